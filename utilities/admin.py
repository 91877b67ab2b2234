"""Admin HTML helpers every app's admin uses: status badges, tags, links, read-only admins."""

from urllib.parse import urlencode

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from .live import live_context, live_response

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


def compact_datetime(value) -> str:
    """A date and time as every admin page shows one (2026-11-29 14:36; config/formats/)."""
    if value is None:
        return "—"
    return format_html(
        '<time datetime="{}">{}</time>',
        value.isoformat(),
        date_format(localtime(value), "DATETIME_FORMAT"),
    )


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


class LiveAdminMixin:
    """A model admin whose list and change pages refresh their live regions in place.

    Mark cells and fields with `utilities.live.live_display`; name the list's in
    `live_list_fields`; return the change page's regions from `live_regions`. The pages then
    poll `<object_id>/live/` and `live/?ids=…` (see `utilities/live.py`).
    """

    live_list_fields: tuple[str, ...] = ()

    def live_regions(self, request, obj) -> list[str]:
        """Every region of the change page, rendered as the page renders it."""
        return []

    def live_list_regions(self, request, objects) -> list[str]:
        """Every region of these rows of the list page."""
        return [getattr(self, name)(obj) for obj in objects for name in self.live_list_fields]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "live/",
                self.admin_site.admin_view(self.live_list_view),
                name="{}_{}_live_list".format(*info),
            ),
            path(
                "<path:object_id>/live/",
                self.admin_site.admin_view(self.live_change_view),
                name="{}_{}_live".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        if "cl" in context:
            rows = context["cl"].result_list  # already fetched: no query more
            regions = self.live_list_regions(request, rows)
            if regions:
                url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_live_list")
                url += "?" + urlencode({"ids": ",".join(str(o.pk) for o in rows)})
                context["live"] = live_context(url, regions)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None) or {}
        obj = context.get("original")
        if obj is not None:
            url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_live", args=[obj.pk])
            regions = self.live_regions(request, obj)
            if regions:
                context["live"] = live_context(url, regions)
        return response

    def live_change_view(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return live_response(request, self.live_regions(request, obj), url=request.path)

    def live_list_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()][:500]
        objects = self.get_queryset(request).filter(pk__in=ids)
        by_pk = {o.pk: o for o in objects}
        rows = [by_pk[pk] for pk in ids if pk in by_pk]
        return live_response(
            request, self.live_list_regions(request, rows), url=request.get_full_path()
        )
