from rest_framework import serializers

from applications.deploy_config import DEPLOY_CONFIG_PERMISSION, env_values_hidden
from deployments.models import Deployment


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
        data = super().to_representation(instance)
        if not self._may_see_env_values():
            data["config"] = env_values_hidden(data["config"])
        return data

    def _may_see_env_values(self) -> bool:
        # Every view passes its request in the context (nested serializers share the root's).
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return bool(user and user.has_perm(DEPLOY_CONFIG_PERMISSION))
