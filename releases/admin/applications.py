"""The Applications list is the "what runs where" overview; an application's page shows the same
for that app and its recent deployments per environment. Both are live (utilities/live.py) and
read through `releases.overview`, a constant number of queries per page whatever the history."""

import json

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from guardian.admin import GuardedModelAdminMixin
from guardian.forms import GroupObjectPermissionsForm, UserObjectPermissionsForm

from applications.choices import Environment
from applications.deploy_config import DEPLOY_CONFIG_PERMISSION, deploy_config_env_hidden
from applications.models import Application
from applications.permissions import (
    GRANT_ACCESS_PERMISSION,
    WORKING_PERMISSIONS,
    application_holders,
)
from live.revisions import application_revision
from utilities.admin import LiveAdminMixin, status_badge, tag
from utilities.live import live_display, region_id

from ..choices import BatchStatus
from ..overview import (
    ENVIRONMENTS,
    application_overviews,
    application_recent_deployments,
    applications_behind,
    applications_never_deployed,
    applications_overview,
    applications_search,
)
from ..selectors import holds_covering_application
from .holds import HeldPageMixin, hold_banner


def _url(model: str, pk: int) -> str:
    return reverse(f"admin:{model}_change", args=[pk])


def _ago(moment) -> str:
    """How long ago, as the browser writes it (static/live-times.js): never from the server's
    clock, so a live region stays the same while nothing changes. The absolute time until then."""
    if moment is None:
        return "—"
    absolute = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
    return format_html(
        '<time datetime="{}" title="{}" data-rt-ago data-rt-now="{}">{}</time>',
        moment.isoformat(),
        absolute,
        gettext("just now"),
        absolute,
    )


def _deployment_facts(deployment) -> str:
    """Where a deployment came from: its batch (and release), when it finished, who queued it."""
    return format_html(
        '<span class="rt-sub">{} <a href="{}">{}</a> · <a href="{}">{}</a> · {}{}</span>',
        gettext("batch"),
        _url("releases_batch", deployment.batch_id),
        deployment.batch_name,
        _url("releases_releaseapp", deployment.release_id),
        gettext("release #%(id)s") % {"id": deployment.release_id},
        _ago(deployment.finished_at),
        format_html(" · {}", deployment.started_by) if deployment.started_by else "",
    )


def environment_now(now, environment: str) -> str:
    """One environment of one app: the tag running, a behind badge, a newer failed attempt."""
    if now is None:
        return format_html('<span class="rt-never">{}</span>', gettext("never deployed"))
    parts = []
    if now.running:
        parts.append(
            format_html(
                '<a href="{}" class="rt-now">{}</a>{}',
                _url("deployments_deployment", now.running.id),
                tag(now.running.image_tag),
                format_html(' <span class="rt-badge rt-badge-behind">{}</span>', gettext("behind"))
                if now.behind
                else "",
            )
        )
        parts.append(_deployment_facts(now.running))
    else:
        parts.append(format_html('<span class="rt-never">{}</span>', gettext("never deployed")))
    if now.last_failed:
        failed = now.last_failed
        text = (
            gettext("%(environment)s attempt with %(tag)s failed %(ago)s")
            if failed.status == "failed"
            else gettext("%(environment)s attempt with %(tag)s was cancelled %(ago)s")
        )
        parts.append(
            format_html(
                '<a class="rt-attempt" href="{}" title="{}">⚠ {}</a>',
                _url("deployments_deployment", failed.id),
                failed.error,
                mark_safe(
                    text
                    % {
                        "environment": Environment(environment).label,
                        "tag": tag(failed.image_tag),
                        "ago": _ago(failed.finished_at),
                    }
                ),
            )
        )
    return format_html_join("", "<div>{}</div>", ((p,) for p in parts))


def latest_build(latest) -> str:
    if latest is None:
        return format_html('<span class="rt-never">{}</span>', gettext("no successful build"))
    return format_html(
        '<div>{}</div><span class="rt-sub"><a href="{}">{}</a> · {}</span>',
        tag(latest.image_tag),
        _url("builds_build", latest.build_id),
        gettext("build #%(number)s") % {"number": latest.build_number},
        _ago(latest.built_at),
    )


def open_batches(releases) -> str:
    if not releases:
        return "—"
    return format_html_join(
        "",
        '<div class="rt-open"><a href="{}">{}</a> {}</div>',
        (
            (
                _url("releases_releaseapp", r.id),
                r.batch_name,
                status_badge(r.batch_status, _batch_status_label(r.batch_status)),
            )
            for r in releases
        ),
    )


def _batch_status_label(value: str) -> str:
    return BatchStatus(value).label


class EnvironmentFilter(admin.SimpleListFilter):
    """Behind the latest build, or never deployed, in one environment."""

    environment = ""

    def lookups(self, request, model_admin):
        return [("behind", _("Behind the latest build")), ("never", _("Never deployed"))]

    def queryset(self, request, queryset):
        if self.value() == "behind":
            return applications_behind(queryset, environment=self.environment)
        if self.value() == "never":
            return applications_never_deployed(queryset, environment=self.environment)
        return queryset


class ProdFilter(EnvironmentFilter):
    title = _("prod")
    parameter_name = "prod"
    environment = Environment.PROD


class PreFilter(EnvironmentFilter):
    title = _("pre")
    parameter_name = "pre"
    environment = Environment.PRE


class OverviewChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        self.result_list = with_overviews(list(self.result_list))


def with_overviews(applications: list[Application]) -> list[Application]:
    """Give each application its `overview` (four queries for all of them)."""
    for app, overview in zip(
        applications, application_overviews(applications=applications), strict=True
    ):
        app.overview = overview
    return applications


class WorkingPermissionsMixin:
    """The grants page offers the working permissions only (add/change/view stay global), as
    checkboxes named by codename, the name `grant_access` and the refusals use."""

    def get_obj_perms_field_choices(self):
        return [
            (codename, format_html("<code>{}</code> — {}", codename, name))
            for codename, name in super().get_obj_perms_field_choices()
            if codename in WORKING_PERMISSIONS
        ]

    def get_obj_perms_field_widget(self):
        return forms.CheckboxSelectMultiple


class UserGrantsForm(WorkingPermissionsMixin, UserObjectPermissionsForm):
    pass


class GroupGrantsForm(WorkingPermissionsMixin, GroupObjectPermissionsForm):
    pass


@admin.register(Application)
class ApplicationAdmin(HeldPageMixin, LiveAdminMixin, GuardedModelAdminMixin, admin.ModelAdmin):
    """What runs where (the list), and one application (its page, with who holds what on it).

    An application's deploy config decides what runs in the cluster: only holders of
    `applications.change_deploy_config` edit it or read its env values. Its name is what Drone's
    notifications match, so it is fixed once a build has named it.

    Its grants page (guardian's object-permissions pages, `<id>/permissions/`) grants the working
    permissions for this application to users and groups, for holders of `grant_access`."""

    list_display = ("name", "pre_now", "prod_now", "latest_build", "open_batches")
    list_display_links = ("name",)
    list_filter = (ProdFilter, PreFilter)
    search_fields = ("name",)
    search_help_text = _("An application's name, or a tag running in pre or prod or built last.")
    live_list_fields = ("pre_now", "prod_now", "latest_build", "open_batches")
    change_form_template = "admin/applications/application/change_form.html"
    change_list_template = "admin/applications/application/change_list.html"

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Guardian's grants views ask has_change_permission(request, None); there the question
        # is grant_access, answered by `_grants_view` before it lets them run.
        if getattr(request, "rt_grants_view", False):
            return True
        return super().has_change_permission(request, obj) or request.user.has_perm(
            DEPLOY_CONFIG_PERMISSION
        )

    def _grants_view(self, view, request, *args):
        if not request.user.has_perm(GRANT_ACCESS_PERMISSION):
            raise PermissionDenied
        request.rt_grants_view = True
        return view(request, *args)

    def obj_perms_manage_view(self, request, object_pk):
        return self._grants_view(super().obj_perms_manage_view, request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        return self._grants_view(super().obj_perms_manage_user_view, request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        return self._grants_view(super().obj_perms_manage_group_view, request, object_pk, group_id)

    def get_obj_perms_base_context(self, request, obj):
        context = super().get_obj_perms_base_context(request, obj)
        context["model_perms"] = context["model_perms"].filter(codename__in=WORKING_PERMISSIONS)
        context["title"] = gettext("Grants for %(application)s") % {"application": obj.name}
        return context

    def get_obj_perms_manage_user_form(self, request):
        return UserGrantsForm

    def get_obj_perms_manage_group_form(self, request):
        return GroupGrantsForm

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

    @admin.display(description=_("deploy config"))
    def deploy_config_shown(self, obj):
        # Shown to those who may not change it: the env names, not their values.
        config = deploy_config_env_hidden(obj.deploy_config) if obj else {}
        return format_html("<pre>{}</pre>", json.dumps(config, indent=2, sort_keys=True))

    def live_revision(self):
        return application_revision()

    def get_queryset(self, request):
        return self.live_annotate(applications_overview())

    def get_changelist(self, request, **kwargs):
        return OverviewChangeList

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": _("What runs where"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return applications_search(queryset, term=term), False

    def live_list_regions(self, request, objects) -> list[str]:
        if objects and not hasattr(objects[0], "overview"):
            with_overviews(objects)
        return super().live_list_regions(request, objects)

    @admin.display(description=_("pre now"))
    @live_display
    def pre_now(self, obj):
        return environment_now(obj.overview.environments[Environment.PRE], Environment.PRE)

    @admin.display(description=_("prod now"))
    @live_display
    def prod_now(self, obj):
        return environment_now(obj.overview.environments[Environment.PROD], Environment.PROD)

    @admin.display(description=_("latest build"))
    @live_display
    def latest_build(self, obj):
        return latest_build(obj.overview.latest)

    @admin.display(description=_("open batches"))
    @live_display
    def open_batches(self, obj):
        return open_batches(obj.overview.open_releases)

    # --- one application's page ---------------------------------------------------------------

    def live_regions(self, request, obj, *, since) -> list[str]:
        return [self.banner(request, obj), self.overview_region(obj), self.deployments_region(obj)]

    def banner(self, request, obj) -> str:
        return hold_banner(request.user, holds_covering_application(application_id=obj.pk))

    def overview_region(self, obj) -> str:
        (overview,) = application_overviews(applications=[self._annotated(obj)])
        context = {
            "region": region_id(obj, "overview"),
            "environments": [
                (Environment(env).label, environment_now(overview.environments[env], env))
                for env in ENVIRONMENTS
            ],
            "latest": latest_build(overview.latest),
            "open_batches": open_batches(overview.open_releases),
        }
        return mark_safe(render_to_string("admin/applications/application/overview.html", context))

    def deployments_region(self, obj) -> str:
        recent = application_recent_deployments(application_id=obj.pk)
        context = {
            "region": region_id(obj, "deployments"),
            "environments": [
                (
                    Environment(env).label,
                    [(d, status_badge(d.status, d.get_status_display())) for d in recent[env]],
                )
                for env in ENVIRONMENTS
            ],
        }
        return mark_safe(
            render_to_string("admin/applications/application/deployments.html", context)
        )

    def _annotated(self, obj) -> Application:
        if hasattr(obj, "latest_image_id"):
            return obj
        return applications_overview().get(pk=obj.pk)

    def live_page_context(self, request, obj) -> dict:
        return {
            "hold_banner": self.banner(request, obj),
            "application_overview": self.overview_region(obj),
            "application_deployments": self.deployments_region(obj),
            "application_holders": [
                (codename, holders["users"], holders["groups"])
                for codename, holders in application_holders(obj).items()
            ],
            "may_grant": request.user.has_perm(GRANT_ACCESS_PERMISSION),
        }
