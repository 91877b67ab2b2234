from functools import partial

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from applications.models import Application
from utilities.admin import (
    LiveAdminMixin,
    ReadOnlyMixin,
    admin_link,
    compact_datetime,
    status_badge,
)
from utilities.live import live_display, region_id

from .. import rules
from ..models import Batch, ReleaseApp
from . import views
from .display import (
    HistoryMixin,
    ReleaseDisplayMixin,
    is_closed,
    release_queryset,
    release_regions,
    switch_cell,
)


class ReleaseInline(ReadOnlyMixin, ReleaseDisplayMixin, admin.TabularInline):
    model = ReleaseApp
    verbose_name = _("release")
    verbose_name_plural = _("releases")
    extra = 0
    readonly_fields = (
        "release_link",
        "chosen_tag",
        "latest_tag",
        "release_status",
        "deployments_now",
        "switch",
    )

    def get_queryset(self, request):
        return release_queryset(super().get_queryset(request))

    def get_fields(self, request, obj=None):
        # Inline instances are made per request, so the switch column may read the user.
        self.request = request
        return self.readonly_fields

    @admin.display(description=_("application"))
    def release_link(self, obj):
        return admin_link(obj, obj.application.name)

    @admin.display(description=_("switch"))
    def switch(self, obj):
        return switch_cell(self.request.user, obj, next_url=batch_url(obj.batch_id))


def batch_url(batch_id: int) -> str:
    return reverse("admin:releases_batch_change", args=[batch_id])


@admin.register(Batch)
class BatchAdmin(LiveAdminMixin, ReadOnlyMixin, HistoryMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "batch_status",
        "release_count",
        "new_tag_count",
        "created_by",
        "created",
    )
    list_filter = ("status",)
    search_fields = ("name",)
    fields = (
        "name",
        "batch_status",
        "release_count",
        "new_tag_count",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [ReleaseInline]
    live_list_fields = ("batch_status", "new_tag_count")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                release_count=Count("releases"),
                new_tag_count=Count("releases", filter=Q(releases__has_new_tag=True)),
            )
        )

    @admin.display(description=_("status"), ordering="status")
    @live_display
    def batch_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj):
        return compact_datetime(obj.created_at)  # short: the list fits 1280 px

    @admin.display(description=_("releases"), ordering="release_count")
    def release_count(self, obj):
        return obj.release_count

    @admin.display(description=_("new tags"), ordering="new_tag_count")
    @live_display
    def new_tag_count(self, obj):
        if is_closed(obj):
            return "—"  # a closed batch takes no new tag
        if not obj.new_tag_count:
            return "0"
        return format_html(
            '{} <span class="rt-badge rt-badge-new">{}</span>', obj.new_tag_count, gettext("new")
        )

    def rollout_actions(self, request, batch) -> list[dict]:
        """The transitions the batch's status allows (the FSM decides which); disabled, with the
        reason, for someone without deploy_batch for every application of the batch."""
        if batch is None:
            return []
        available = {t.name for t in batch.get_available_status_transitions()}
        blocker = None
        if available & set(views.ROLLOUTS):
            blocker = rules.deploy_blocker(
                request.user, Application.objects.filter(releases__batch=batch)
            )
        return [
            {
                "name": name,
                "label": label,
                "url": reverse("admin:releases_batch_rollout", args=[batch.pk, name]),
                "confirm": name in views.CONFIRMED_ROLLOUTS,
                "refused": blocker.detail if blocker else "",
            }
            for name, (label, _service) in views.ROLLOUTS.items()
            if name in available
        ]

    def tools(self, request, batch) -> str:
        """The rollout buttons and the History link, or the line saying the batch is closed."""
        closed_line = ""
        if is_closed(batch):
            closed_line = gettext(
                "This batch is %(status)s: it is closed, nothing in it changes any more."
            ) % {"status": batch.get_status_display().lower()}
        actions = self.rollout_actions(request, batch)
        context = {
            "region": region_id(batch, "tools"),
            "rollout_actions": actions,
            # One reason for them all: the same permission for the same applications.
            "rollout_refused": actions[0]["refused"] if actions else "",
            "history_url": reverse("admin:releases_batch_history", args=[batch.pk]),
            "closed_line": closed_line,
        }
        return mark_safe(render_to_string("admin/releases/batch/tools.html", context))

    def live_regions(self, request, batch) -> list[str]:
        releases = release_queryset(batch.releases.order_by("pk"))
        return [
            self.batch_status(batch),
            self.new_tag_count(batch),
            self.tools(request, batch),
            *release_regions(request.user, releases, next_url=batch_url(batch.pk)),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if batch is not None:
            extra_context["batch_tools"] = self.tools(request, batch)
            extra_context["rollout_note"] = any(
                action["name"] == "start_pre_deploy"
                for action in self.rollout_actions(request, batch)
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request, obj=None):
        # Creating goes through `create_batch` (views.create_batch), never a model form.
        return request.user.has_perm(rules.ADD_BATCH_PERMISSION)

    def add_view(self, request, form_url="", extra_context=None):
        return views.create_batch(self, request)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/rollout/<str:transition>/",
                self.admin_site.admin_view(partial(views.rollout, self)),
                name="releases_batch_rollout",
            ),
            *super().get_urls(),
        ]
