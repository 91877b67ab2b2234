from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from utilities.validators import IMAGE_TAG_PATTERN, validate_image_tag

from .choices import BuildStatus


class Build(models.Model):
    """What Drone told us about one build; the newest notification's facts win."""

    repo = models.CharField(_("repository"), max_length=255, blank=True, default="")
    number = models.PositiveBigIntegerField(_("build number"))
    status = models.CharField(_("status"), max_length=16, choices=BuildStatus.choices)
    commit = models.CharField(_("commit"), max_length=64, blank=True, default="")
    branch = models.CharField(_("branch"), max_length=255, blank=True, default="")
    link = models.URLField(_("link"), max_length=2000, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # When Release Train first saw the build successful; set once. "Latest" across repos
    # compares it, since Drone numbers builds per repo.
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)

    class Meta:
        ordering = ["-number", "-pk"]
        verbose_name = _("build")
        verbose_name_plural = _("builds")
        permissions = [("notify_build", _("Can notify Release Train of a build"))]
        constraints = [
            models.UniqueConstraint(fields=["repo", "number"], name="build_repo_number_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="build_number_positive"),
            models.CheckConstraint(
                condition=Q(status__in=BuildStatus.values), name="build_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=BuildStatus.SUCCESS, succeeded_at__isnull=False)
                | (~Q(status=BuildStatus.SUCCESS) & Q(succeeded_at__isnull=True)),
                name="build_succeeded_at_iff_success",
            ),
        ]
        indexes = [models.Index(fields=["status", "-number"], name="build_status_idx")]

    def __str__(self) -> str:
        return f"{self.repo or '-'}#{self.number}"


class BuildImage(models.Model):
    build = models.ForeignKey(
        Build, verbose_name=_("build"), on_delete=models.CASCADE, related_name="images"
    )
    application = models.ForeignKey(
        "applications.Application",
        verbose_name=_("application"),
        on_delete=models.PROTECT,
        related_name="build_images",
    )
    image_tag = models.CharField(_("image tag"), max_length=128, validators=[validate_image_tag])
    # The build's repo and number, copied at creation (they never change), and the time it was
    # first seen successful (null until then), so an app's latest build is read from an index
    # here rather than by walking its build history.
    repo = models.CharField(_("repository"), max_length=255, blank=True, default="")
    build_number = models.PositiveBigIntegerField(_("build number"))
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)

    class Meta:
        ordering = ["build_id", "application_id"]
        verbose_name = _("build image")
        verbose_name_plural = _("build images")
        constraints = [
            models.UniqueConstraint(
                fields=["build", "application"], name="build_image_build_application_unique"
            ),
            models.CheckConstraint(
                condition=Q(image_tag__regex=IMAGE_TAG_PATTERN), name="build_image_tag_valid"
            ),
        ]
        indexes = [
            # "Which successful builds made this tag of this app" (the switch's "known tag" rule, tag lists).
            models.Index(fields=["application", "image_tag"], name="build_image_app_tag_idx"),
            # An app's successful builds, the most recently successful first (builds.selectors).
            models.Index(
                fields=["application", "-succeeded_at", "-build"],
                name="build_image_app_succeeded_idx",
            ),
            # A higher-numbered build of the same app and repo (builds.selectors).
            models.Index(
                fields=["application", "repo", "-build_number"], name="build_image_app_repo_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.image_tag}"
