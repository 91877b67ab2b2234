"""Admin for batches and releases: new tags at a glance, switches and rollouts through the services.

Nothing here saves a status. Every button and action calls the same service function as the API
(`releases.services`), from its own view outside the admin's atomic change form, because the
services open durable transactions and register on-commit Job deletions.
"""

from collections import defaultdict
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from deployments.models import Deployment
from utilities.errors import ERRORS, DomainError

from . import rules, selectors, services
from .choices import OPEN_BATCH_STATUSES, BatchStatus
from .forms import SwitchVersionForm
from .models import Application, Batch, ReleaseApp

admin.site.site_header = _("Release Train")
admin.site.site_title = _("Release Train")
admin.site.index_title = _("Batches, releases, builds and deployments")
admin.site.site_url = None  # the admin is the site; no "View site" link to nowhere

# Every status value of every model, by the colour it is shown in.
TONES = {
    "waiting": ("pre_waiting", "prod_waiting", "pending", "blocked"),
    "active": ("pre_deploying", "prod_deploying", "running"),
    "ok": ("pre_deployed", "prod_deployed", "completed", "succeeded", "success"),
    "failed": ("pre_failed", "prod_failed", "failed", "failure", "error", "killed"),
    "muted": ("cancelled", "skipped", "declined"),
}
TONE_OF = {value: tone for tone, values in TONES.items() for value in values}


def status_badge(value: str, label) -> str:
    return format_html(
        '<span class="rt-badge rt-tone-{}" data-status="{}">{}</span>',
        TONE_OF.get(value, "muted"),
        value,
        label,
    )


def tag(value: str) -> str:
    return format_html('<code class="rt-tag">{}</code>', value) if value else "—"


def new_tag_badge() -> str:
    return format_html('<span class="rt-badge rt-badge-new">{}</span>', gettext("new tag"))


# What a service may refuse with; the last two only if a row changed under a transition, which
# the services' locks prevent. The API's exception handler maps them to the same codes.
REFUSALS = (DomainError, ConcurrentTransition, TransitionNotAllowed)


def error_code(error: Exception) -> str:
    if isinstance(error, DomainError):
        return error.code
    return "concurrent_update" if isinstance(error, ConcurrentTransition) else "invalid_transition"


def error_message(error: Exception) -> str:
    """The translated text of the error's code: the admin speaks the user's language."""
    return str(ERRORS[error_code(error)][1])


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def with_deployment_in_progress(queryset):
    """Annotate the fact switch check 6 reads, as `release_get` does, for lists of releases."""
    return queryset.annotate(
        deployment_in_progress=Exists(
            Deployment.objects.filter(release_app=OuterRef("pk")).in_progress()
        )
    )


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


class ReadOnlyMixin:
    """Rows change only through the services; the admin shows them and offers their buttons."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


# Batch transitions a person may start, in button order; the rest follow from deployments.
ROLLOUTS = {
    "start_pre_deploy": (_("Start pre rollout"), services.start_pre_deploy),
    "start_prod_deploy": (_("Start prod rollout"), services.start_prod_deploy),
    "cancel": (_("Cancel batch"), services.cancel_batch),
}


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
            for name, (label, _service) in ROLLOUTS.items()
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
                self.admin_site.admin_view(self.rollout_view),
                name="releases_batch_rollout",
            ),
            *super().get_urls(),
        ]

    def rollout_view(self, request, object_id: int, transition: str):
        """Start a stage or cancel, through the service. POST; cancel asks first on GET."""
        if not (
            request.user.has_perm(rules.DEPLOY_PERMISSION) and self.has_view_permission(request)
        ):
            raise PermissionDenied
        if transition not in ROLLOUTS:
            raise Http404
        batch = get_object_or_404(Batch, pk=object_id)
        service = ROLLOUTS[transition][1]
        change_url = reverse("admin:releases_batch_change", args=[batch.pk])
        if request.method == "GET" and transition == "cancel":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": gettext("Cancel batch %(name)s?") % {"name": batch.name},
                "batch": batch,
                "change_url": change_url,
            }
            return TemplateResponse(request, "admin/releases/batch/cancel_confirm.html", context)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            result = service(batch_id=batch.pk, user=request.user)
        except REFUSALS as error:
            messages.error(request, error_message(error))
        else:
            self._report_rollout(request, transition, result)
        return HttpResponseRedirect(change_url)

    def _report_rollout(self, request, transition, result) -> None:
        status = result.batch.get_status_display()
        if not result.changed:
            messages.info(
                request,
                gettext("Nothing to do: the batch is already %(status)s.") % {"status": status},
            )
        elif transition == "cancel":
            count = len(result.deployments)
            text = gettext("Batch cancelled.")
            if count:
                text += " " + ngettext(
                    "%(count)d unfinished deployment was cancelled; its Job is being deleted.",
                    "%(count)d unfinished deployments were cancelled; their Jobs are being deleted.",
                    count,
                ) % {"count": count}
            messages.success(request, text)
        elif result.deployments:
            count = len(result.deployments)
            messages.success(
                request,
                ngettext(
                    "Rollout started: %(count)d deployment queued; the batch is now %(status)s.",
                    "Rollout started: %(count)d deployments queued; the batch is now %(status)s.",
                    count,
                )
                % {"count": count, "status": status},
            )
        else:
            messages.success(
                request,
                gettext("No release needed this stage; the batch is now %(status)s.")
                % {"status": status},
            )


class NewTagFilter(admin.SimpleListFilter):
    title = _("new tag")
    parameter_name = "has_new_tag"

    def lookups(self, request, model_admin):
        return [("1", _("Has a new tag")), ("0", _("Up to date"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(has_new_tag=self.value() == "1")
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
class ReleaseAppAdmin(ReadOnlyMixin, ReleaseDisplayMixin, admin.ModelAdmin):
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
    search_fields = ("application__name",)
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

    def get_queryset(self, request):
        return release_queryset(super().get_queryset(request))

    def get_list_display(self, request):
        if not request.user.has_perm(rules.SWITCH_PERMISSION):
            return self.list_display

        # A closure, not a method: the ModelAdmin is shared by every request.
        @admin.display(description=_("switch"))
        def switch(obj):
            return switch_control(request.user, obj)

        return (*self.list_display, switch)

    def has_switch_version_permission(self, request) -> bool:
        return request.user.has_perm(rules.SWITCH_PERMISSION)

    @admin.display(description=_("batch"), ordering="batch__created_at")
    def batch_link(self, obj):
        return admin_link(obj.batch)

    @admin.display(description=_("batch"), ordering="batch__created_at")
    def batch_with_status(self, obj):
        return format_html("{}<br>{}", admin_link(obj.batch), self.batch_status(obj))

    @admin.display(description=_("batch status"), ordering="batch__status")
    def batch_status(self, obj):
        return status_badge(obj.batch.status, obj.batch.get_status_display())

    @admin.display(description=_("build"))
    def build_link(self, obj):
        return admin_link(obj.build)

    @admin.display(description=_("latest build"))
    def latest_build_link(self, obj):
        return admin_link(obj.latest_build)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        release = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if release is not None:
            view = selectors.release_status(release_id=release.pk, user=request.user)
            extra_context.update(
                status_view=view,
                can_use_switch=request.user.has_perm(rules.SWITCH_PERMISSION),
                switch_url=reverse("admin:releases_releaseapp_switch", args=[release.pk]),
                history=[(d, status_badge(d.status, d.get_status_display())) for d in view.history],
                builds_url=reverse("admin:builds_build_changelist")
                + f"?application={release.application_id}",
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/switch/",
                self.admin_site.admin_view(self.switch_view),
                name="releases_releaseapp_switch",
            ),
            *super().get_urls(),
        ]

    def switch_view(self, request, object_id: int):
        """Offer this app's successful tags and switch through `services.switch_version`."""
        if not (
            request.user.has_perm(rules.SWITCH_PERMISSION) and self.has_view_permission(request)
        ):
            raise PermissionDenied
        try:
            view = selectors.release_status(release_id=object_id, user=request.user)
        except DomainError:
            raise Http404 from None
        release = view.release
        change_url = reverse("admin:releases_releaseapp_change", args=[release.pk])
        next_url = request.GET.get("next") or request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = ""

        options = selectors.application_tag_choices(application_id=release.application_id)
        form = SwitchVersionForm(request.POST or None, release=release, options=options)
        if request.method == "POST" and form.is_valid():
            try:
                result = services.switch_version(
                    release_id=release.pk,
                    user=request.user,
                    image_tag=form.cleaned_data["image_tag"],
                    expected_image_tag=form.cleaned_data["expected_image_tag"],
                )
            except REFUSALS as error:
                messages.error(request, error_message(error))
                return HttpResponseRedirect(request.get_full_path())
            self._report_switch(request, result, batch_status_before=release.batch.status)
            return HttpResponseRedirect(next_url or change_url)

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Switch %(app)s to another tag") % {"app": release.application.name},
            "release": release,
            "batch_badge": status_badge(release.batch.status, release.batch.get_status_display()),
            "form": form,
            "blockers": view.switch_blockers,
            "change_url": change_url,
            "next_url": next_url,
        }
        return TemplateResponse(request, "admin/releases/releaseapp/switch.html", context)

    def _report_switch(self, request, result, *, batch_status_before: str) -> None:
        app = result.release.application.name
        if not result.changed:
            messages.info(
                request,
                gettext("%(app)s is already at %(tag)s; nothing changed.")
                % {"app": app, "tag": result.release.image_tag},
            )
            return
        messages.success(
            request,
            gettext(
                "Switched %(app)s from %(old)s to %(new)s. A new pre deployment waits for the "
                "next pre rollout."
            )
            % {"app": app, "old": result.previous_image_tag, "new": result.release.image_tag},
        )
        if batch_status_before == BatchStatus.PROD_WAITING != result.batch_status:
            messages.info(
                request,
                gettext("The batch went back to waiting for pre: the new tag must pass pre first."),
            )

    @admin.action(description=_("Switch to latest tag"), permissions=["switch_version"])
    def switch_to_latest(self, request, queryset):
        """Switch each selected release on its own; report every one's result."""
        switched, unchanged, blocked = [], [], defaultdict(list)
        for release in queryset.select_related("application", "batch").order_by("pk"):
            name = f"{release.application.name} ({release.batch.name})"
            try:
                result = services.switch_version(release_id=release.pk, user=request.user)
            except REFUSALS as error:
                blocked[error_code(error)].append(name)
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
        for code, names in blocked.items():
            messages.warning(
                request,
                gettext("Not switched: %(names)s — %(reason)s")
                % {"names": "; ".join(names), "reason": str(ERRORS[code][1])},
            )


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
