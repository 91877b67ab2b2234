from rest_framework import serializers

from builds.choices import BuildStatus
from builds.models import Build, BuildImage


class BuildImageSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="application.name", read_only=True)

    class Meta:
        model = BuildImage
        fields = ["app", "image_tag"]
        read_only_fields = fields


class BuildSerializer(serializers.ModelSerializer):
    images = BuildImageSerializer(many=True, read_only=True)

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


class NotifiedAppSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Application name; registered on first sight.")
    image_tag = serializers.CharField(help_text="The image tag the build pushed (OCI grammar).")


class BuildNotificationSerializer(serializers.Serializer):
    """The body Drone sends. For the schema only: `BuildNotification.parse` validates it, the
    same code that serves `manage.py notify_build`."""

    build_number = serializers.IntegerField(min_value=1)
    build_status = serializers.ChoiceField(choices=BuildStatus.choices)
    apps = NotifiedAppSerializer(many=True)
    repo = serializers.CharField(required=False, allow_blank=True, max_length=255)
    commit = serializers.CharField(required=False, allow_blank=True, max_length=64)
    branch = serializers.CharField(required=False, allow_blank=True, max_length=255)
    link = serializers.URLField(required=False, allow_blank=True, max_length=2000)


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
