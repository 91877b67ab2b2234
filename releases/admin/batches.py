from functools import partial

from django.contrib import admin
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from applications.choices import Environment
from applications.models import Application
from applications.permissions import DEPLOY_BATCH, SWITCH_VERSION, permission_name
from deployments.choices import DeploymentStatus
from live.revisions import batch_revision, releases_changed_since
from utilities.admin import (
    LiveAdminMixin,
    ReadOnlyMixin,
    admin_link,
    compact_datetime,
    status_badge,
)
from utilities.live import live_display, region_id

from .. import rules
from ..choices import BatchStatus, ReleaseStatus
from ..models import Batch, ReleaseApp
from ..selectors import holds_covering_batches
from ..services.batches import stage_holds
from . import views
from .display import (
    HistoryMixin,
    ReleaseDisplayMixin,
    is_closed,
    release_queryset,
    release_regions,
    switch_cell,
)
from .holds import HeldPageMixin, hold_banner


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


FAILED_RELEASE_STATUSES = (ReleaseStatus.PRE_FAILED, ReleaseStatus.PROD_FAILED)
# What a person can do about a failure, by where the batch stands once its stage failed.
FAILURE_NEXT_STEPS = {
    BatchStatus.PRE_WAITING: _(
        "Fix the cause and start the pre rollout again: it retries the failed applications. "
        "Or switch a failed application to a tag that has the fix, then start pre."
    ),
    BatchStatus.PROD_WAITING: _(
        "Fix the cause and start the prod rollout again: it retries the failed applications. "
        "Or switch a failed application to a tag that has the fix; the batch then goes back to "
        "waiting for pre."
    ),
}


def last_failure(batch) -> str | None:
    """The failed status of the batch's last stage (prod over pre), if any release failed it."""
    if batch.prod_failed_count:
        return ReleaseStatus.PROD_FAILED
    if batch.pre_failed_count:
        return ReleaseStatus.PRE_FAILED
    return None


def failed_deployment(release):
    """The release's current deployment that failed (it carries the Job's error), if shown."""
    environment = (
        Environment.PROD if release.status == ReleaseStatus.PROD_FAILED else Environment.PRE
    )
    return next(
        (
            d
            for d in release.current_deployments
            if d.environment == environment and d.status == DeploymentStatus.FAILED
        ),
        None,
    )


STAGE_ENVIRONMENTS = {"start_pre_deploy": Environment.PRE, "start_prod_deploy": Environment.PROD}


def _held_reason(batch, transition: str) -> str:
    if transition not in STAGE_ENVIRONMENTS:
        return ""  # cancelling is never held
    holds = stage_holds(batch_id=batch.pk, environment=STAGE_ENVIRONMENTS[transition])
    return rules.hold_detail(holds[0]) if holds else ""


def batch_url(batch_id: int) -> str:
    return reverse("admin:releases_batch_change", args=[batch_id])


@admin.register(Batch)
class BatchAdmin(HeldPageMixin, LiveAdminMixin, ReadOnlyMixin, HistoryMixin, admin.ModelAdmin):
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
        "updated",
    )
    readonly_fields = fields
    inlines = [ReleaseInline]
    live_list_fields = ("batch_status", "new_tag_count")
    live_permissions = (permission_name(DEPLOY_BATCH), permission_name(SWITCH_VERSION))

    def live_revision(self):
        return batch_revision()

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                release_count=Count("releases"),
                new_tag_count=Count("releases", filter=Q(releases__has_new_tag=True)),
                pre_failed_count=Count(
                    "releases", filter=Q(releases__status=ReleaseStatus.PRE_FAILED)
                ),
                prod_failed_count=Count(
                    "releases", filter=Q(releases__status=ReleaseStatus.PROD_FAILED)
                ),
            )
        )

    @admin.display(description=_("status"), ordering="status")
    @live_display
    def batch_status(self, obj):
        badge = status_badge(obj.status, obj.get_status_display())
        failed = last_failure(obj)
        if failed is None:
            return badge
        return format_html("{} {}", badge, status_badge(failed, ReleaseStatus(failed).label))

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj):
        return compact_datetime(obj.created_at)  # short: the list fits 1280 px

    @admin.display(description=_("updated at"))
    @live_display
    def updated(self, obj):
        return compact_datetime(obj.updated_at)

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
                # A stage a hold would refuse: the button is disabled and says why.
                "held": _held_reason(batch, name),
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
            "deployments_url": reverse("admin:deployments_deployment_changelist")
            + f"?batch={batch.pk}",
            "closed_line": closed_line,
        }
        return mark_safe(render_to_string("admin/releases/batch/tools.html", context))

    def failures(self, batch, releases) -> str:
        """The banner naming the releases whose last deployment failed, their errors, and what to
        do; an empty region while there is none, so a failure appears in place."""
        failed = [r for r in releases if r.status in FAILED_RELEASE_STATUSES]
        context = {
            "region": region_id(batch, "failures"),
            "failed": [(r, failed_deployment(r)) for r in failed],
            "count": len(failed),
            "next_step": FAILURE_NEXT_STEPS.get(batch.status, ""),
        }
        return mark_safe(render_to_string("admin/releases/batch/failures.html", context))

    def banner(self, request, batch) -> str:
        holds = holds_covering_batches(batches=[batch])[batch.pk]
        return hold_banner(request.user, holds)

    def live_regions(self, request, batch, *, since) -> list[str]:
        # The batch's own regions always (its new tag count and failures sum up the rows); of
        # the rows, those stamped after what the page shows.
        releases = batch.releases.order_by("pk")
        changed = (
            None if since is None else releases_changed_since(batch_id=batch.pk, revision=since)
        )
        if changed is not None:
            releases = releases.filter(pk__in=changed)
        failed = batch.releases.filter(status__in=FAILED_RELEASE_STATUSES).order_by("pk")
        releases, failed = release_queryset(releases), list(release_queryset(failed))
        return [
            self.banner(request, batch),
            self.batch_status(batch),
            self.new_tag_count(batch),
            self.updated(batch),
            self.tools(request, batch),
            self.failures(batch, failed),
            *release_regions(request.user, releases, next_url=batch_url(batch.pk)),
        ]

    def live_page_context(self, request, batch) -> dict:
        releases = release_queryset(batch.releases.order_by("pk"))
        return {
            "batch_tools": self.tools(request, batch),
            "batch_failures": self.failures(batch, releases),
            "hold_banner": self.banner(request, batch),
            "rollout_note": any(
                action["name"] == "start_pre_deploy"
                for action in self.rollout_actions(request, batch)
            ),
        }

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
