"""Deployments: read-only, with the superseded chain (a release's switch history) linked."""

import json

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import _boolean_icon
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from applications.deploy_config import DEPLOY_CONFIG_PERMISSION, env_values_hidden
from utilities.admin import ReadOnlyMixin, admin_link, compact_datetime, status_badge, tag

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


class BatchFilter(admin.SimpleListFilter):
    """The newest batches to pick from; any batch's deployments by `?batch=<id>` (the batch
    page links there), so the sidebar stays short however many batches there are."""

    title = _("batch")
    parameter_name = "batch"
    offered = 15

    def lookups(self, request, model_admin):
        # By name, not import: deployments sits below releases and imports none of it.
        batch_model = apps.get_model("releases", "Batch")
        batches = batch_model.objects.order_by("-created_at", "-pk")[: self.offered]
        return [(str(b.pk), b.name) for b in batches]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(release_app__batch_id=int(self.value()))
        return queryset


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "number",
        "release_link",
        "batch_link",
        "image",
        "deployment_status",
        "current_or_superseded",
        "created",
        "finished",
    )
    list_filter = (BatchFilter, "environment", "status", CurrentFilter, "cleanup_pending")
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
    readonly_fields = (*fields, "config_shown")

    def get_fields(self, request, obj=None):
        # Env values (passwords, tokens) only for those who may change deploy configs.
        if request.user.has_perm(DEPLOY_CONFIG_PERMISSION):
            return self.fields
        return tuple("config_shown" if f == "config" else f for f in self.fields)

    @admin.display(description=_("config"))
    def config_shown(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(env_values_hidden(obj.config), indent=2, sort_keys=True)
        )

    @admin.display(description=_("deployment"), ordering="pk")
    def number(self, obj):
        # The environment here, not in a column of its own: the list fits 1280 px.
        return format_html("#{} {}", obj.pk, obj.get_environment_display())

    @admin.display(description=_("release"), ordering="release_app__application__name")
    def release_link(self, obj):
        # The application's name: the tag has its own column.
        return admin_link(obj.release_app, obj.release_app.application.name)

    @admin.display(description=_("batch"), ordering="release_app__batch__created_at")
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

    @admin.display(description=_("current"), ordering="superseded_at")
    def current_or_superseded(self, obj):
        """One narrow column: current, or the deployment that took over."""
        if obj.superseded_by_id is None:
            return _boolean_icon(obj.is_current)
        return format_html(
            "{} {}",
            gettext("superseded by"),
            admin_link(obj.superseded_by, f"#{obj.superseded_by_id}"),
        )

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj):
        return compact_datetime(obj.created_at)

    @admin.display(description=_("finished at"), ordering="finished_at")
    def finished(self, obj):
        return compact_datetime(obj.finished_at)

    @admin.display(description=_("supersedes"))
    def supersedes_links(self, obj):
        previous = obj.supersedes.order_by("pk")
        if not previous:
            return "—"
        return format_html_join(", ", "{}", ((admin_link(d),) for d in previous))
