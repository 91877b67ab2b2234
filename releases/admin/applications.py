import json

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from utilities.validators import DEPLOY_CONFIG_PERMISSION, deploy_config_env_hidden

from ..choices import OPEN_BATCH_STATUSES
from ..models import Application


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    """An application's deploy config decides what runs in the cluster: only holders of
    `releases.change_deploy_config` edit it or read its env values. Its name is what Drone's
    notifications match, so it is fixed once a build has named it."""

    list_display = ("name", "open_releases", "created_at")
    search_fields = ("name",)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or request.user.has_perm(
            DEPLOY_CONFIG_PERMISSION
        )

    def get_fields(self, request, obj=None):
        config = "deploy_config" if self._may_edit_config(request) else "deploy_config_shown"
        return ("name", config, "created_at")

    def get_readonly_fields(self, request, obj=None):
        readonly = ["created_at", "deploy_config_shown"]
        name_fixed = obj is not None and obj.build_images.exists()
        if name_fixed or not super().has_change_permission(request, obj):
            readonly.append("name")
        return readonly

    def _may_edit_config(self, request) -> bool:
        return request.user.has_perm(DEPLOY_CONFIG_PERMISSION)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_release_count=Count(
                    "releases", filter=Q(releases__batch__status__in=OPEN_BATCH_STATUSES)
                )
            )
        )

    @admin.display(description=_("releases in open batches"), ordering="open_release_count")
    def open_releases(self, obj):
        return obj.open_release_count

    @admin.display(description=_("deploy config"))
    def deploy_config_shown(self, obj):
        # Shown to those who may not change it: the env names, not their values.
        config = deploy_config_env_hidden(obj.deploy_config) if obj else {}
        return format_html("<pre>{}</pre>", json.dumps(config, indent=2, sort_keys=True))
