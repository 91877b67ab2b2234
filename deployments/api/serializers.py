from rest_framework import serializers

from applications.deploy_config import DEPLOY_CONFIG_PERMISSION, env_values_hidden
from deployments.models import Deployment

_DATETIME = serializers.DateTimeField()


def datetime_text(value) -> str | None:
    """A datetime as every DRF field of the API writes it (ISO 8601, `Z` for UTC)."""
    return None if value is None else _DATETIME.to_representation(value)


class DeploymentSerializer(serializers.ModelSerializer):
    release = serializers.PrimaryKeyRelatedField(source="release_app", read_only=True)
    current = serializers.BooleanField(source="is_current", read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who started the stage or switch that made it; null once that user was deleted.",
    )

    class Meta:
        model = Deployment
        fields = [
            "id",
            "release",
            "environment",
            "image_tag",
            "status",
            "current",
            "config",
            "job_name",
            "job_namespace",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "superseded_at",
            "superseded_by",
            "cleanup_pending",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "config": {
                "help_text": "What the Job got: namespace, image, command, env. Env values are "
                "null unless you hold `applications.change_deploy_config`."
            }
        }

    def to_representation(self, instance):
        """The fields above, written out: DRF's per-field machinery (building a field object of
        every model field, then calling each) costs more than the rest of a status request.
        `tests/api/test_releases.py` holds this equal to that machinery."""
        d = instance
        config = d.config if self._may_see_env_values() else env_values_hidden(d.config)
        created_by = d.created_by
        return {
            "id": d.id,
            "release": d.release_app_id,
            "environment": d.environment,
            "image_tag": d.image_tag,
            "status": d.status,
            "current": d.is_current,
            "config": config,
            "job_name": d.job_name,
            "job_namespace": d.job_namespace,
            "error": d.error,
            "created_by": created_by.username if created_by is not None else None,
            "created_at": datetime_text(d.created_at),
            "started_at": datetime_text(d.started_at),
            "finished_at": datetime_text(d.finished_at),
            "superseded_at": datetime_text(d.superseded_at),
            "superseded_by": d.superseded_by_id,
            "cleanup_pending": d.cleanup_pending,
        }

    def _may_see_env_values(self) -> bool:
        # Every view passes its request in the context (nested serializers share the root's).
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return bool(user and user.has_perm(DEPLOY_CONFIG_PERMISSION))
