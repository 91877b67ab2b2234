"""What the batch page and the release pages both show of a release."""

from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Prefetch
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from deployments.models import Deployment
from utilities.admin import admin_link, status_badge, tag
from utilities.live import live_display, live_region, region_id

from .. import rules
from ..choices import OPEN_BATCH_STATUSES
from ..history import entry_read
from ..selectors import switch_holds, with_deployment_in_progress, with_switch_hold


class HistoryMixin:
    """The History page: each entry's message in the reader's language, and its note."""

    object_history_template = "admin/releases/object_history.html"

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        if isinstance(response, TemplateResponse):  # not the redirect for a missing object
            page = response.context_data["action_list"]
            response.context_data["entries"] = [entry_read(entry) for entry in page]
        return response


def is_closed(batch) -> bool:
    """Completed or cancelled: nothing about it can change any more."""
    return batch.status not in OPEN_BATCH_STATUSES


def new_tag_badge() -> str:
    return format_html('<span class="rt-badge rt-badge-new">{}</span>', gettext("new tag"))


def switch_reasons(user, release) -> list[tuple[str, str]]:
    """Why this user may not switch this release to its latest tag now: (code, words) pairs."""
    blockers = rules.switch_blockers(
        user=user,
        application=release.application,
        batch_status=release.batch.status,
        deployment_in_progress=release.deployment_in_progress,
        holds=switch_holds(release),
    )
    if blockers and blockers[0].code == "permission_denied":
        # The other reasons are moot for someone who may never switch this app.
        return [(blockers[0].code, blockers[0].detail)]
    return [(b.code, b.detail) for b in blockers]


def switch_control(user, release, *, next_url: str = "") -> str:
    """The Switch version button, or a disabled one saying why; nothing once the batch closed."""
    if is_closed(release.batch):
        return "—"
    label = gettext("Switch version")
    reasons = switch_reasons(user, release)
    if reasons:
        words = " ".join(detail for _code, detail in reasons)
        return format_html(
            '<button type="button" class="rt-button" disabled aria-disabled="true" title="{}">'
            '{}</button><span class="rt-reason">{}</span>',
            words,
            label,
            words,
        )
    url = reverse("admin:releases_releaseapp_switch", args=[release.pk])
    if next_url:
        url = f"{url}?{urlencode({'next': next_url})}"
    return format_html(
        '<a class="rt-button{}" href="{}">{}</a>',
        " rt-button-primary" if release.has_new_tag else "",
        url,
        label,
    )


def switch_cell(user, release, *, next_url: str = "") -> str:
    """`switch_control` as a live region of the release's row."""
    return live_region(
        region_id(release, "switch"), switch_control(user, release, next_url=next_url)
    )


def current_deployments_display(deployments) -> str:
    if not deployments:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        "{} {} {}",
        (
            (
                admin_link(d, d.get_environment_display()),
                tag(d.image_tag),
                status_badge(d.status, d.get_status_display()),
            )
            for d in deployments
        ),
    )


def release_queryset(queryset):
    """Releases with everything a row shows: batch, app, builds, current deployments, progress."""
    return with_switch_hold(
        with_deployment_in_progress(
            queryset.select_related("batch", "application", "build", "latest_build")
        )
    ).prefetch_related(
        Prefetch(
            "deployments",
            queryset=Deployment.objects.current().order_by("environment"),
            to_attr="current_deployments",
        )
    )


class ReleaseDisplayMixin:
    @admin.display(description=_("application"), ordering="application__name")
    def application_name(self, obj):
        return obj.application.name

    @admin.display(description=_("chosen tag"), ordering="image_tag")
    @live_display
    def chosen_tag(self, obj):
        return tag(obj.image_tag)

    @admin.display(description=_("latest tag"), ordering="latest_image_tag")
    @live_display
    def latest_tag(self, obj):
        if not obj.latest_image_tag:
            return "—"
        if obj.has_new_tag and not is_closed(obj.batch):
            return format_html("{} {}", tag(obj.latest_image_tag), new_tag_badge())
        return tag(obj.latest_image_tag)

    @admin.display(description=_("status"), ordering="status")
    @live_display
    def release_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("current deployments"))
    @live_display
    def deployments_now(self, obj):
        return current_deployments_display(obj.current_deployments)


ROW_REGIONS = ("chosen_tag", "latest_tag", "release_status", "deployments_now")


def release_regions(user, releases, *, fields=ROW_REGIONS, next_url: str = "") -> list[str]:
    """The live regions of these releases' rows: the `fields` shown, and the switch button."""
    cells = ReleaseDisplayMixin()
    return [
        region
        for release in releases
        for region in (
            *(getattr(cells, name)(release) for name in fields),
            switch_cell(user, release, next_url=next_url),
        )
    ]
