from collections import defaultdict
from functools import partial

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from applications.permissions import SWITCH_VERSION, may_somewhere, permission_name
from live.revisions import release_revision
from utilities.admin import LiveAdminMixin, ReadOnlyMixin, admin_link, status_badge
from utilities.errors import REFUSALS, refusal
from utilities.live import live_display, region_id

from .. import selectors, services
from ..choices import BatchStatus
from ..models import ReleaseApp
from . import views
from .display import (
    HistoryMixin,
    ReleaseDisplayMixin,
    is_closed,
    release_queryset,
    release_regions,
    switch_cell,
    switch_reasons,
)
from .holds import HeldPageMixin, hold_banner


class NewTagFilter(admin.SimpleListFilter):
    title = _("new tag")
    parameter_name = "has_new_tag"

    def lookups(self, request, model_admin):
        return [("1", _("Has a new tag")), ("0", _("Up to date"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return selectors.releases_new_tag_filter(queryset, has_new_tag=self.value() == "1")
        return queryset


class BatchStatusFilter(admin.SimpleListFilter):
    title = _("batch status")
    parameter_name = "batch_status"

    def lookups(self, request, model_admin):
        return BatchStatus.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(batch__status=self.value())
        return queryset


@admin.register(ReleaseApp)
class ReleaseAppAdmin(
    HeldPageMixin,
    LiveAdminMixin,
    ReadOnlyMixin,
    ReleaseDisplayMixin,
    HistoryMixin,
    admin.ModelAdmin,
):
    list_display = (
        "application_name",
        "batch_with_status",
        "chosen_tag",
        "latest_tag",
        "release_status",
    )
    list_display_links = ("application_name",)
    ordering = ("-batch__created_at", "-batch_id", "application__name")
    list_filter = (NewTagFilter, BatchStatusFilter, "status", "application")
    search_fields = ("application__name", "image_tag", "latest_image_tag")
    search_help_text = _("Application name or tag (chosen or latest).")
    actions = ["switch_to_latest"]
    fields = (
        "application_name",
        "batch_link",
        "batch_status",
        "chosen_tag",
        "build_link",
        "release_status",
        "latest_tag",
        "latest_build_link",
        "latest_seen_at",
        "tag_updated_at",
        "tag_updated_by",
        "created_at",
    )
    readonly_fields = fields
    live_permissions = (permission_name(SWITCH_VERSION),)

    def live_revision(self):
        return release_revision()

    def get_queryset(self, request):
        return release_queryset(super().get_queryset(request))

    def get_list_display(self, request):
        # A closure, not a method: the ModelAdmin is shared by every request. Shown to everyone:
        # who may not switch sees the button disabled, and why.
        @admin.display(description=_("switch"))
        def switch(obj):
            return switch_cell(request.user, obj)

        return (*self.list_display, switch)

    def live_list_regions(self, request, objects) -> list[str]:
        return [self.batch_with_status(o) for o in objects] + release_regions(request.user, objects)

    def live_regions(self, request, obj, *, since) -> list[str]:
        view = selectors.release_status(release_id=obj.pk, user=request.user)
        return [
            hold_banner(request.user, view.release.covering_holds),
            self.chosen_tag(obj),
            self.latest_tag(obj),
            self.release_status(obj),
            self.batch_status(obj),
            self.latest_build_link(obj),
            self.tools(request, obj),
            self.deployments(view),
        ]

    def tools(self, request, release) -> str:
        """The Switch version button (or why not) and the links, as one live region."""
        closed = is_closed(release.batch)
        context = {
            "region": region_id(release, "tools"),
            "closed": closed,
            "reasons": [] if closed else switch_reasons(request.user, release),
            "switch_url": reverse("admin:releases_releaseapp_switch", args=[release.pk]),
            "builds_url": reverse("admin:builds_build_changelist")
            + f"?application={release.application_id}",
            "history_url": reverse("admin:releases_releaseapp_history", args=[release.pk]),
        }
        return mark_safe(render_to_string("admin/releases/releaseapp/tools.html", context))

    def deployments(self, view) -> str:
        """Every deployment of the release, newest first, as one live region."""
        context = {
            "region": region_id(view.release, "deployments"),
            "history": [(d, status_badge(d.status, d.get_status_display())) for d in view.history],
        }
        return mark_safe(render_to_string("admin/releases/releaseapp/deployments.html", context))

    def has_switch_version_permission(self, request) -> bool:
        # Offered to whoever may switch some application; each release is then checked for its.
        return may_somewhere(request.user, SWITCH_VERSION)

    @admin.display(description=_("batch"), ordering="batch__created_at")
    def batch_link(self, obj):
        return admin_link(obj.batch)

    @admin.display(description=_("batch"), ordering="batch__created_at")
    @live_display
    def batch_with_status(self, obj):
        return format_html(
            "{}<br>{}",
            admin_link(obj.batch),
            status_badge(obj.batch.status, obj.batch.get_status_display()),
        )

    @admin.display(description=_("batch status"), ordering="batch__status")
    @live_display
    def batch_status(self, obj):
        return status_badge(obj.batch.status, obj.batch.get_status_display())

    @admin.display(description=_("build"))
    def build_link(self, obj):
        return admin_link(obj.build)

    @admin.display(description=_("latest build"))
    @live_display
    def latest_build_link(self, obj):
        return admin_link(obj.latest_build)

    def live_page_context(self, request, release) -> dict:
        view = selectors.release_status(release_id=release.pk, user=request.user)
        return {
            "release_tools": self.tools(request, release),
            "release_deployments": self.deployments(view),
            "hold_banner": hold_banner(request.user, view.release.covering_holds),
        }

    def get_urls(self):
        return [
            path(
                "<int:object_id>/switch/",
                self.admin_site.admin_view(partial(views.switch, self)),
                name="releases_releaseapp_switch",
            ),
            *super().get_urls(),
        ]

    @admin.action(description=_("Switch to latest tag"), permissions=["switch_version"])
    def switch_to_latest(self, request, queryset):
        """Switch each selected release on its own; report every one's result."""
        switched, unchanged, blocked = [], [], defaultdict(list)
        for release in queryset.select_related("application", "batch").order_by("pk"):
            name = f"{release.application.name} ({release.batch.name})"
            try:
                result = services.switch_version(release_id=release.pk, user=request.user)
            except REFUSALS as error:
                blocked[refusal(error).message].append(name)
                continue
            if result.changed:
                switched.append(f"{name}: {result.previous_image_tag} → {result.release.image_tag}")
            else:
                unchanged.append(f"{name}: {result.release.image_tag}")
        if switched:
            messages.success(
                request, gettext("Switched to the latest tag: %s") % "; ".join(switched)
            )
        if unchanged:
            messages.info(
                request,
                gettext("Already at the latest tag, unchanged: %s") % "; ".join(unchanged),
            )
        for reason, names in blocked.items():
            messages.warning(
                request,
                gettext("Not switched: %(names)s — %(reason)s")
                % {"names": "; ".join(names), "reason": reason},
            )
