from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

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
