from rest_framework import serializers

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
