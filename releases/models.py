from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from applications.choices import Environment
from utilities.validators import IMAGE_TAG_PATTERN, validate_image_tag

from .choices import OPEN_BATCH_STATUSES, BatchStatus, ReleaseStatus


class Batch(ConcurrentTransitionMixin, models.Model):
    name = models.CharField(_("name"), max_length=200)
    status = FSMField(
        _("status"),
        max_length=20,
        choices=BatchStatus.choices,
        default=BatchStatus.PRE_WAITING,
        protected=True,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        constraints = [
            # Lets a retried create find the batch it already made (see create_batch).
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(status__in=OPEN_BATCH_STATUSES),
                name="batch_open_name_unique",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="batch_status_idx")]

    def __str__(self) -> str:
        return self.name

    @transition(field=status, source=BatchStatus.PRE_WAITING, target=BatchStatus.PRE_DEPLOYING)
    def start_pre_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PRE_DEPLOYING, target=BatchStatus.PROD_WAITING)
    def finish_pre_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PRE_DEPLOYING, target=BatchStatus.PRE_WAITING)
    def fail_pre_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PROD_WAITING, target=BatchStatus.PROD_DEPLOYING)
    def start_prod_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PROD_DEPLOYING, target=BatchStatus.COMPLETED)
    def finish_prod_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PROD_DEPLOYING, target=BatchStatus.PROD_WAITING)
    def fail_prod_deploy(self) -> None:
        pass

    @transition(field=status, source=BatchStatus.PROD_WAITING, target=BatchStatus.PRE_WAITING)
    def reopen_pre(self) -> None:
        pass

    @transition(field=status, source=OPEN_BATCH_STATUSES, target=BatchStatus.CANCELLED)
    def cancel(self) -> None:
        pass


class ReleaseApp(ConcurrentTransitionMixin, models.Model):
    """One application's version in a batch; the API calls it a *release*."""

    batch = models.ForeignKey(
        Batch, verbose_name=_("batch"), on_delete=models.CASCADE, related_name="releases"
    )
    application = models.ForeignKey(
        "applications.Application",
        verbose_name=_("application"),
        on_delete=models.PROTECT,
        related_name="releases",
    )
    image_tag = models.CharField(_("image tag"), max_length=128, validators=[validate_image_tag])
    build = models.ForeignKey(
        "builds.Build",
        verbose_name=_("build"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    status = FSMField(
        _("status"),
        max_length=20,
        choices=ReleaseStatus.choices,
        default=ReleaseStatus.PENDING,
        protected=True,
    )
    latest_image_tag = models.CharField(
        _("latest image tag"), max_length=128, blank=True, default=""
    )
    latest_build = models.ForeignKey(
        "builds.Build",
        verbose_name=_("latest build"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    latest_seen_at = models.DateTimeField(_("latest seen at"), null=True, blank=True)
    # Derived by the database, so no code path can let it drift from the two tags.
    has_new_tag = models.GeneratedField(
        expression=Case(
            When(
                Q(latest_image_tag__gt="") & ~Q(latest_image_tag=F("image_tag")),
                then=Value(True),
            ),
            default=Value(False),
        ),
        output_field=models.BooleanField(verbose_name=_("has new tag")),
        db_persist=True,
    )
    tag_updated_at = models.DateTimeField(_("tag updated at"), null=True, blank=True)
    tag_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("tag updated by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["batch_id", "application__name"]
        verbose_name = _("release")
        verbose_name_plural = _("releases")
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "application"], name="release_batch_application_unique"
            ),
            models.CheckConstraint(
                condition=Q(image_tag__regex=IMAGE_TAG_PATTERN), name="release_image_tag_valid"
            ),
            models.CheckConstraint(
                condition=Q(latest_image_tag="") | Q(latest_image_tag__regex=IMAGE_TAG_PATTERN),
                name="release_latest_image_tag_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="release_status_idx"),
            # Detection looks releases up by application; the unique key leads with batch.
            models.Index(fields=["application", "batch"], name="release_application_idx"),
            models.Index(
                fields=["batch"], condition=Q(has_new_tag=True), name="release_new_tag_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application} @ {self.image_tag}"

    @transition(
        field=status,
        source=[ReleaseStatus.PENDING, ReleaseStatus.PRE_FAILED],
        target=ReleaseStatus.PRE_DEPLOYING,
    )
    def start_pre(self) -> None:
        pass

    @transition(field=status, source=ReleaseStatus.PRE_DEPLOYING, target=ReleaseStatus.PRE_DEPLOYED)
    def finish_pre(self) -> None:
        pass

    @transition(field=status, source=ReleaseStatus.PRE_DEPLOYING, target=ReleaseStatus.PRE_FAILED)
    def fail_pre(self) -> None:
        pass

    @transition(
        field=status,
        source=[ReleaseStatus.PRE_DEPLOYED, ReleaseStatus.PROD_FAILED],
        target=ReleaseStatus.PROD_DEPLOYING,
    )
    def start_prod(self) -> None:
        pass

    @transition(
        field=status, source=ReleaseStatus.PROD_DEPLOYING, target=ReleaseStatus.PROD_DEPLOYED
    )
    def finish_prod(self) -> None:
        pass

    @transition(field=status, source=ReleaseStatus.PROD_DEPLOYING, target=ReleaseStatus.PROD_FAILED)
    def fail_prod(self) -> None:
        pass

    @transition(
        field=status,
        source=[
            ReleaseStatus.PENDING,
            ReleaseStatus.PRE_DEPLOYED,
            ReleaseStatus.PRE_FAILED,
            ReleaseStatus.PROD_DEPLOYED,
            ReleaseStatus.PROD_FAILED,
        ],
        target=ReleaseStatus.PENDING,
    )
    def switch_version(self, *, image_tag: str, build, user, at) -> None:
        self.image_tag = image_tag
        self.build = build
        self.tag_updated_at = at
        self.tag_updated_by = user


class HoldQuerySet(models.QuerySet):
    """The one vocabulary of holds: which are active, and which cover a deployment."""

    def active(self, *, at=None):
        """Started, not ended, not lifted at `at` (default now)."""
        at = at or timezone.now()
        return self.filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=at),
            starts_at__lte=at,
            lifted_at__isnull=True,
        )

    def covering(self, *, environment=None, application=None, batch=None):
        """Holds covering a deployment to `environment` of `application` in `batch`: every field
        a hold sets matches. Each argument is a value, an expression (`OuterRef`), a list (any
        of them), or None: a deployment whatever that field is (a release covers all its
        environments)."""
        return self.filter(
            _matches("environment", environment, unset=""),
            _matches("application", application),
            _matches("batch", batch),
        )

    def next_change(self, *, at=None):
        """The earliest moment after `at` at which a hold starts or ends, or None: when what
        the holds allow changes by the clock alone."""
        at = at or timezone.now()
        found = self.filter(lifted_at__isnull=True).aggregate(
            start=models.Min("starts_at", filter=Q(starts_at__gt=at)),
            end=models.Min("ends_at", filter=Q(ends_at__gt=at)),
        )
        return min((t for t in found.values() if t is not None), default=None)

    def naming(self, *, application, batch):
        """Holds that name this application or this batch: what stops a switch (the "no hold" rule)."""
        return self.filter(Q(application=application) | Q(batch=batch))


def _matches(field: str, value, *, unset=None) -> Q:
    unset_q = Q(**{field: unset}) if unset is not None else Q(**{f"{field}__isnull": True})
    if value is None:
        return Q()
    if isinstance(value, models.QuerySet):
        return unset_q | Q(**{f"{field}__in": value})
    if isinstance(value, list | tuple | set | frozenset):
        return unset_q | Q(**{f"{field}__in": list(value)})
    return unset_q | Q(**{field: value})


class Hold(models.Model):
    """Stops rollouts while active: every deployment it covers waits."""

    reason = models.CharField(_("reason"), max_length=500)
    # Blank: every environment.
    environment = models.CharField(
        _("environment"), max_length=10, choices=Environment.choices, blank=True, default=""
    )
    application = models.ForeignKey(
        "applications.Application",
        verbose_name=_("application"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="holds",
    )
    batch = models.ForeignKey(
        Batch,
        verbose_name=_("batch"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="holds",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("placed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("placed at"), default=timezone.now)
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("lifted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lift_note = models.CharField(_("lift note"), max_length=500, blank=True, default="")

    objects = HoldQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-pk"]
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        # Placing and lifting need applications.add_hold / lift_hold (per application).
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(
                condition=~(Q(application__isnull=False) & Q(batch__isnull=False)),
                name="hold_application_or_batch",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="hold_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(environment__in=["", *Environment.values]),
                name="hold_environment_valid",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="hold_reason_required"),
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True) | Q(lifted_at__gte=F("created_at")),
                name="hold_lifted_after_placed",
            ),
        ]
        indexes = [
            # "Active holds" is a scan of the unlifted ones by start: lifted history is skipped.
            models.Index(
                fields=["starts_at", "ends_at"],
                condition=Q(lifted_at__isnull=True),
                name="hold_unlifted_idx",
            ),
            models.Index(fields=["application", "starts_at"], name="hold_application_idx"),
            models.Index(fields=["batch", "starts_at"], name="hold_batch_idx"),
        ]

    def __str__(self) -> str:
        return self.reason

    def is_active(self, *, at=None) -> bool:
        at = at or timezone.now()
        return (
            self.lifted_at is None
            and self.starts_at <= at
            and (self.ends_at is None or self.ends_at > at)
        )

    def covers_release(self, release) -> bool:
        """Covers some deployment of this release (in any environment)."""
        return self.application_id in (None, release.application_id) and self.batch_id in (
            None,
            release.batch_id,
        )
