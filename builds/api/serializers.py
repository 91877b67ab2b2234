from rest_framework import serializers

from builds.models import Build, BuildImage

# The webhook body is defined once, where it is validated; the schema shows that definition.
from builds.notifications import BuildNotificationSerializer, NotifiedAppSerializer

__all__ = [
    "BuildImageSerializer",
    "BuildNotificationSerializer",
    "BuildNotifyResultSerializer",
    "BuildSerializer",
    "NewTagSerializer",
    "NotifiedAppSerializer",
    "NotifiedBuildSerializer",
]


class BuildImageSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="application.name", read_only=True)

    class Meta:
        model = BuildImage
        fields = ["app", "image_tag"]
        read_only_fields = fields


class BuildSerializer(serializers.ModelSerializer):
    images = BuildImageSerializer(many=True, read_only=True)
    # Not `format: uri`: empty when Drone sent no link.
    link = serializers.CharField(
        read_only=True, help_text="The build's page (http or https URL); empty if not sent."
    )

    class Meta:
        model = Build
        fields = [
            "id",
            "repo",
            "number",
            "status",
            "commit",
            "branch",
            "link",
            "received_at",
            "updated_at",
            "images",
        ]
        read_only_fields = fields


class NotifiedBuildSerializer(serializers.ModelSerializer):
    class Meta:
        model = Build
        fields = ["id", "repo", "number", "status"]
        read_only_fields = fields


class NewTagSerializer(serializers.Serializer):
    app = serializers.CharField()
    image_tag = serializers.CharField()
    release_ids = serializers.ListField(child=serializers.IntegerField())


class BuildNotifyResultSerializer(serializers.Serializer):
    build = NotifiedBuildSerializer()
    duplicate = serializers.BooleanField(help_text="The same status was already known.")
    stale = serializers.BooleanField(help_text="An older status than the one known; ignored.")
    new_tags = NewTagSerializer(many=True)

    def to_representation(self, instance) -> dict:
        # Every webhook call answers with this: written out by hand, as the declared fields
        # would (a test holds the two equal), without DRF's per-field machinery.
        build = instance.build
        return {
            "build": {
                "id": build.pk,
                "repo": build.repo,
                "number": build.number,
                "status": build.status,
            },
            "duplicate": bool(instance.duplicate),
            "stale": bool(instance.stale),
            "new_tags": [
                {"app": t.app, "image_tag": t.image_tag, "release_ids": list(t.release_ids)}
                for t in instance.new_tags
            ],
        }
