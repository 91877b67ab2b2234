"""Deployments: read-only, with the superseded chain (a release's switch history) linked."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from utilities.admin import ReadOnlyMixin, admin_link, status_badge, tag

from .models import Deployment


class CurrentFilter(admin.SimpleListFilter):
    title = _("current")
    parameter_name = "current"

    def lookups(self, request, model_admin):
        return [("1", _("Current")), ("0", _("Superseded"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(superseded_at__isnull=self.value() == "1")
        return queryset


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "release_link",
        "environment",
        "image",
        "deployment_status",
        "is_current",
        "superseded_by_link",
        "created_at",
        "finished_at",
    )
    list_filter = ("environment", "status", CurrentFilter, "cleanup_pending")
    search_fields = ("release_app__application__name", "image_tag", "job_name")
    list_select_related = ("release_app__application", "release_app__batch", "superseded_by")
    fields = (
        "release_link",
        "batch_link",
        "environment",
        "image",
        "deployment_status",
        "superseded_by_link",
        "supersedes_links",
        "superseded_at",
        "job_name",
        "job_namespace",
        "cleanup_pending",
        "error",
        "config",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description=_("release"), ordering="release_app__application__name")
    def release_link(self, obj):
        return admin_link(obj.release_app)

    @admin.display(description=_("batch"))
    def batch_link(self, obj):
        return admin_link(obj.release_app.batch)

    @admin.display(description=_("image tag"), ordering="image_tag")
    def image(self, obj):
        return tag(obj.image_tag)

    @admin.display(description=_("status"), ordering="status")
    def deployment_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("current"), boolean=True, ordering="superseded_at")
    def is_current(self, obj):
        return obj.is_current

    @admin.display(description=_("superseded by"))
    def superseded_by_link(self, obj):
        return admin_link(obj.superseded_by)

    @admin.display(description=_("supersedes"))
    def supersedes_links(self, obj):
        previous = obj.supersedes.order_by("pk")
        if not previous:
            return "—"
        return format_html_join(", ", "{}", ((admin_link(d),) for d in previous))
