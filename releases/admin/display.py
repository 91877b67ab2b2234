"""What the batch page and the release pages both show of a release."""

from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from deployments.models import Deployment
from utilities.admin import admin_link, status_badge, tag

from .. import rules
from ..selectors import with_deployment_in_progress


def new_tag_badge() -> str:
    return format_html('<span class="rt-badge rt-badge-new">{}</span>', gettext("new tag"))


def switch_control(user, release, *, next_url: str = "") -> str:
    """The Switch version button, or a disabled one saying why (for permission holders only)."""
    blockers = rules.switch_blockers(
        user=user,
        batch_status=release.batch.status,
        deployment_in_progress=release.deployment_in_progress,
    )
    label = gettext("Switch version")
    if blockers:
        reasons = " ".join(b.detail for b in blockers)
        return format_html(
            '<button type="button" class="rt-button" disabled aria-disabled="true" title="{}">'
            '{}</button><span class="rt-reason">{}</span>',
            reasons,
            label,
            reasons,
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
    return with_deployment_in_progress(
        queryset.select_related("batch", "application", "build", "latest_build")
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
    def chosen_tag(self, obj):
        return tag(obj.image_tag)

    @admin.display(description=_("latest tag"), ordering="latest_image_tag")
    def latest_tag(self, obj):
        if not obj.latest_image_tag:
            return "—"
        if obj.has_new_tag:
            return format_html("{} {}", tag(obj.latest_image_tag), new_tag_badge())
        return tag(obj.latest_image_tag)

    @admin.display(description=_("status"), ordering="status")
    def release_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("current deployments"))
    def deployments_now(self, obj):
        return current_deployments_display(obj.current_deployments)
