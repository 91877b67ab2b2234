from functools import partial

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from utilities.admin import ReadOnlyMixin, admin_link, status_badge

from .. import rules
from ..models import Batch, ReleaseApp
from . import views
from .display import ReleaseDisplayMixin, release_queryset, switch_control


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
        fields = list(self.readonly_fields)
        if not request.user.has_perm(rules.SWITCH_PERMISSION):
            fields.remove("switch")
        return fields

    @admin.display(description=_("application"))
    def release_link(self, obj):
        return admin_link(obj, obj.application.name)

    @admin.display(description=_("switch"))
    def switch(self, obj):
        next_url = reverse("admin:releases_batch_change", args=[obj.batch_id])
        return switch_control(self.request.user, obj, next_url=next_url)


@admin.register(Batch)
class BatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "batch_status",
        "release_count",
        "new_tag_count",
        "created_by",
        "created_at",
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
    def batch_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("releases"), ordering="release_count")
    def release_count(self, obj):
        return obj.release_count

    @admin.display(description=_("new tags"), ordering="new_tag_count")
    def new_tag_count(self, obj):
        if not obj.new_tag_count:
            return "0"
        return format_html(
            '{} <span class="rt-badge rt-badge-new">{}</span>', obj.new_tag_count, gettext("new")
        )

    def rollout_actions(self, request, batch) -> list[dict]:
        """The transitions this user may start from the batch's status (the FSM decides which)."""
        if batch is None or not request.user.has_perm(rules.DEPLOY_PERMISSION):
            return []
        available = {t.name for t in batch.get_available_status_transitions()}
        return [
            {
                "name": name,
                "label": label,
                "url": reverse("admin:releases_batch_rollout", args=[batch.pk, name]),
                "confirm": name == "cancel",
            }
            for name, (label, _service) in views.ROLLOUTS.items()
            if name in available
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "rollout_actions": self.rollout_actions(request, batch),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/rollout/<str:transition>/",
                self.admin_site.admin_view(partial(views.rollout, self)),
                name="releases_batch_rollout",
            ),
            *super().get_urls(),
        ]
