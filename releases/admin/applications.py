from django.contrib import admin
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from ..choices import OPEN_BATCH_STATUSES
from ..models import Application


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ("name", "open_releases", "created_at")
    search_fields = ("name",)
    readonly_fields = ("created_at",)

    def has_delete_permission(self, request, obj=None):
        return False

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
