"""Builds as Drone reported them: read-only, linked to the applications and tags they produced."""

from django.contrib import admin
from django.db.models import Prefetch
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from applications.models import Application
from utilities.admin import ReadOnlyMixin, admin_link, status_badge, tag

from .models import Build, BuildImage


class ApplicationFilter(admin.SimpleListFilter):
    title = _("application")
    parameter_name = "application"

    def lookups(self, request, model_admin):
        return list(Application.objects.values_list("pk", "name"))

    def queryset(self, request, queryset):
        if self.value():
            # One image per (build, application), so this never duplicates a build.
            return queryset.filter(images__application_id=self.value())
        return queryset


class BuildImageInline(ReadOnlyMixin, admin.TabularInline):
    model = BuildImage
    verbose_name = _("image")
    verbose_name_plural = _("images")
    fields = ("application_link", "image")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        # Images are part of their build: whoever may see the build sees what it produced.
        return request.user.has_perm("builds.view_build")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("application")

    @admin.display(description=_("application"))
    def application_link(self, obj):
        return admin_link(obj.application, obj.application.name)

    @admin.display(description=_("image tag"))
    def image(self, obj):
        return tag(obj.image_tag)


@admin.register(Build)
class BuildAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "build_status", "produced", "short_commit", "branch", "received_at")
    list_filter = ("status", ApplicationFilter, "repo")
    search_fields = (
        "repo",
        "commit",
        "branch",
        "images__image_tag",
        "images__application__name",
    )
    search_help_text = _(
        "Build number (42 or #42), commit, tag, application, repository or branch."
    )
    fields = (
        "repo",
        "number",
        "build_status",
        "commit",
        "branch",
        "drone_link",
        "received_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [BuildImageInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch(
                    "images",
                    queryset=BuildImage.objects.select_related("application").order_by(
                        "application__name"
                    ),
                )
            )
        )

    def get_search_results(self, request, queryset, search_term):
        """A number is also the build's number, exactly: what "build 42" means to a person."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = search_term.strip().lstrip("#")
        if number.isdigit() and len(number) < 10:
            found |= queryset.filter(number=int(number))
        return found, may_have_duplicates

    @admin.display(description=_("status"), ordering="status")
    def build_status(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=_("images"))
    def produced(self, obj):
        return format_html_join(
            ", ", "{} {}", ((i.application.name, tag(i.image_tag)) for i in obj.images.all())
        )

    @admin.display(description=_("commit"), ordering="commit")
    def short_commit(self, obj):
        return format_html("<code>{}</code>", obj.commit[:10]) if obj.commit else "—"

    @admin.display(description=_("link"))
    def drone_link(self, obj):
        if not obj.link:
            return "—"
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', obj.link, obj.link)
