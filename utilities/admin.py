"""Admin HTML helpers every app's admin uses: status badges, tags, links, read-only admins."""

from django.urls import reverse
from django.utils.html import format_html

# Every status value of every model, by the colour it is shown in.
TONES = {
    "waiting": ("pre_waiting", "prod_waiting", "pending", "blocked"),
    "active": ("pre_deploying", "prod_deploying", "running"),
    "ok": ("pre_deployed", "prod_deployed", "completed", "succeeded", "success"),
    "failed": ("pre_failed", "prod_failed", "failed", "failure", "error", "killed"),
    "muted": ("cancelled", "skipped", "declined"),
}
TONE_OF = {value: tone for tone, values in TONES.items() for value in values}


def status_badge(value: str, label) -> str:
    return format_html(
        '<span class="rt-badge rt-tone-{}" data-status="{}">{}</span>',
        TONE_OF.get(value, "muted"),
        value,
        label,
    )


def tag(value: str) -> str:
    return format_html('<code class="rt-tag">{}</code>', value) if value else "—"


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


class ReadOnlyMixin:
    """Rows change only through the services; the admin shows them and offers their buttons."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
