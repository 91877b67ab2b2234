"""The catalogue of applications: what Drone builds and Release Train deploys."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from utilities.validators import APP_NAME_PATTERN, validate_app_name

from .deploy_config import validate_deploy_config


class Application(models.Model):
    name = models.CharField(_("name"), max_length=63, unique=True, validators=[validate_app_name])
    # Per environment: {"pre": {"namespace": ..., "image": ..., "command": [...], ...}, "prod": ...}
    deploy_config = models.JSONField(
        _("deploy config"), default=dict, blank=True, validators=[validate_deploy_config]
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        # The table it had in the releases app, where it began: moving it kept every row.
        db_table = "releases_application"
        ordering = ["name"]
        verbose_name = _("application")
        verbose_name_plural = _("applications")
        # Its deploy config decides what runs in the cluster: more than change_application.
        # The working permissions live here, on the object they are granted for, so a team can
        # hold one for its own applications only (django-guardian object permissions).
        permissions = [
            ("change_deploy_config", _("Can change an application's deploy config")),
            ("switch_version", _("Can switch a release to another image tag")),
            ("deploy_batch", _("Can start and cancel batch rollouts")),
            ("add_hold", _("Can place a hold that stops rollouts")),
            ("lift_hold", _("Can lift a hold")),
            ("grant_access", _("Can grant the working permissions on applications")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(name__regex=APP_NAME_PATTERN), name="application_name_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Field validators skip "empty" values such as [], which is still not a config.
        if not isinstance(self.deploy_config, dict):
            raise ValidationError(
                {"deploy_config": _("The deploy config must be an object keyed by environment.")}
            )

    def deploy_config_for(self, environment: str) -> dict:
        return dict(self.deploy_config.get(environment) or {})
