from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from applications.choices import Environment
from utilities.validators import IMAGE_TAG_PATTERN

from .choices import UNFINISHED_DEPLOYMENT_STATUSES, DeploymentStatus

# A deployment that reached its environment and did not succeed: it failed (a Job that failed,
# or a spec that could never launch), or it was cancelled after its Job had started.
FAILED_ATTEMPT = Q(status=DeploymentStatus.FAILED) | Q(
    status=DeploymentStatus.CANCELLED, started_at__isnull=False
)


class DeploymentQuerySet(models.QuerySet):
    def current(self):
        return self.filter(superseded_at__isnull=True)

    def unclaimed(self):
        """Rows no reconciler holds: never claimed, released, or their lease ran out."""
        return self.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=Now()))

    def due(self):
        """Rows not resting after a failed attempt (see `Deployment.next_attempt_at`)."""
        return self.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()))

    def in_progress(self):
        """Running, or pending with a Job name: the reconciler is creating its Job right now."""
        return self.filter(
            Q(status=DeploymentStatus.RUNNING)
            | Q(status=DeploymentStatus.PENDING) & ~Q(job_name="")
        )


class Deployment(ConcurrentTransitionMixin, models.Model):
    release_app = models.ForeignKey(
        "releases.ReleaseApp",
        verbose_name=_("release"),
        on_delete=models.CASCADE,
        related_name="deployments",
    )
    # The release's application, copied at creation (a release never changes application), so
    # "what runs where" reads the newest deployment of an app from an index, not from history.
    application = models.ForeignKey(
        "applications.Application",
        verbose_name=_("application"),
        on_delete=models.PROTECT,
        related_name="deployments",
        db_index=False,  # deployment_app_recent_idx leads with it
    )
    environment = models.CharField(_("environment"), max_length=8, choices=Environment.choices)
    image_tag = models.CharField(_("image tag"), max_length=128)
    # What the Job needs, copied at creation so a later change of defaults never alters it.
    config = models.JSONField(_("config"), default=dict, blank=True)
    status = FSMField(
        _("status"),
        max_length=16,
        choices=DeploymentStatus.choices,
        default=DeploymentStatus.PENDING,
        protected=True,
    )
    job_name = models.CharField(_("job name"), max_length=63, blank=True, default="")
    job_namespace = models.CharField(_("job namespace"), max_length=63, blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    superseded_at = models.DateTimeField(_("superseded at"), null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self",
        verbose_name=_("superseded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="supersedes",
    )
    cleanup_pending = models.BooleanField(_("Job cleanup pending"), default=False)
    # A reconciler's lease on this row while it talks to the executor outside any transaction:
    # others skip the row until the lease runs out, so a live reconciler's work is never
    # duplicated and a crashed one's is picked up once the lease expires.
    claimed_by = models.CharField(_("claimed by"), max_length=100, blank=True, default="")
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    # A launch or Job deletion that failed rests until `next_attempt_at`, longer after each
    # failure in a row (`attempts`), so work that keeps failing never holds up work that is ready.
    attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("deployment")
        verbose_name_plural = _("deployments")
        constraints = [
            models.UniqueConstraint(
                fields=["release_app", "environment"],
                condition=Q(superseded_at__isnull=True),
                name="deployment_one_current_per_environment",
            ),
            models.CheckConstraint(
                condition=Q(environment__in=Environment.values), name="deployment_environment_valid"
            ),
            models.CheckConstraint(
                condition=Q(image_tag__regex=IMAGE_TAG_PATTERN), name="deployment_image_tag_valid"
            ),
            models.CheckConstraint(
                condition=Q(superseded_by__isnull=True) | Q(superseded_at__isnull=False),
                name="deployment_superseded_by_has_time",
            ),
        ]
        indexes = [
            # History of a release, newest first (status endpoint, admin).
            models.Index(fields=["release_app", "-created_at"], name="deployment_history_idx"),
            # The reconciler's scan and the switch's "in progress" EXISTS stay off history.
            models.Index(
                fields=["status", "release_app"],
                condition=Q(status__in=UNFINISHED_DEPLOYMENT_STATUSES),
                name="deployment_unfinished_idx",
            ),
            models.Index(
                fields=["id"], condition=Q(cleanup_pending=True), name="deployment_cleanup_idx"
            ),
            models.Index(fields=["environment", "status"], name="deployment_env_status_idx"),
            # What runs where (releases/overview.py): an app's newest deployments per environment,
            # its newest success and its newest failed attempt, each one index probe.
            models.Index(
                fields=["application", "environment", "-created_at", "-id"],
                name="deployment_app_recent_idx",
            ),
            models.Index(
                fields=["application", "environment", "-finished_at", "-id"],
                condition=Q(status=DeploymentStatus.SUCCEEDED),
                name="deployment_app_running_idx",
            ),
            models.Index(
                fields=["application", "environment", "-finished_at", "-id"],
                condition=FAILED_ATTEMPT,
                name="deployment_app_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_environment_display()} {self.image_tag}"

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None

    def mark_superseded(self, *, at) -> None:
        """No longer current. Superseding is a fact beside the status, except that a
        deployment superseded before it ran will never run: it is cancelled."""
        self.superseded_at = at
        if self.status == DeploymentStatus.PENDING:
            self.cancel(at=at)
        elif self.job_name:
            self.cleanup_pending = True

    @transition(field=status, source=DeploymentStatus.PENDING, target=DeploymentStatus.RUNNING)
    def start(self, *, at) -> None:
        self.started_at = at

    @transition(field=status, source=DeploymentStatus.RUNNING, target=DeploymentStatus.SUCCEEDED)
    def succeed(self, *, at) -> None:
        self.finished_at = at

    # A launch that can never work (an invalid Job spec) fails a deployment that is still pending.
    @transition(field=status, source=UNFINISHED_DEPLOYMENT_STATUSES, target=DeploymentStatus.FAILED)
    def fail(self, *, at, error: str) -> None:
        self.finished_at = at
        self.error = error

    @transition(
        field=status, source=UNFINISHED_DEPLOYMENT_STATUSES, target=DeploymentStatus.CANCELLED
    )
    def cancel(self, *, at) -> None:
        self.finished_at = at
        # A Job may exist (or be being created) once a name is recorded; it must be deleted.
        if self.job_name:
            self.cleanup_pending = True
