from django.db.models.manager import BaseManager
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from applications.choices import Environment
from deployments.api.serializers import DeploymentSerializer, datetime_text
from deployments.choices import DeploymentStatus
from releases.choices import BatchStatus, HistoryAction, ReleaseStatus
from releases.history import NOTE_MAX_LENGTH, note_clean
from releases.models import Batch, Hold, ReleaseApp
from releases.selectors import holds_covering_batches, holds_covering_releases
from utilities.api.fields import AppNameField, ImageTagField, StrictCharField, StrictIntegerField
from utilities.errors import DomainError
from utilities.validators import (
    NAME_TEXT_PATTERN,
    PRINTABLE_TEXT_PATTERN,
    PatternValidator,
)


class EnvironmentOrNullField(serializers.ChoiceField):
    """An optional environment, stored blank when unset and shown as null."""

    def __init__(self, **kwargs):
        super().__init__(choices=Environment.choices, allow_null=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None


class HoldSerializer(serializers.ModelSerializer):
    environment = EnvironmentOrNullField(
        read_only=True, help_text="The environment it stops; null: every environment."
    )
    application = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="The application it stops; null: every application (or the batch's).",
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    lifted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    active = serializers.BooleanField(
        source="is_active", read_only=True, help_text="Started, not ended, not lifted."
    )

    class Meta:
        model = Hold
        fields = [
            "id",
            "reason",
            "environment",
            "application",
            "batch",
            "created_by",
            "created_at",
            "starts_at",
            "ends_at",
            "lifted_by",
            "lifted_at",
            "lift_note",
            "active",
        ]
        read_only_fields = fields
        extra_kwargs = {"batch": {"help_text": "The batch it stops (by id); null: any batch."}}


class CoveringHoldsListSerializer(serializers.ListSerializer):
    """A list of objects that show their covering holds: one look-up for the whole list."""

    def to_representation(self, data):
        items = list(data.all() if isinstance(data, BaseManager) else data)
        self.child.attach_holds(items)
        return super().to_representation(items)


class CoveringHoldsMixin:
    """`holds`: the active holds covering the object, read once per object or list."""

    @staticmethod
    def holds_of(instances) -> dict:
        raise NotImplementedError

    def attach_holds(self, instances) -> None:
        missing = [i for i in instances if not hasattr(i, "covering_holds")]
        if missing:
            found = self.holds_of(missing)
            for instance in missing:
                instance.covering_holds = found[instance.pk]

    def to_representation(self, instance):
        self.attach_holds([instance])
        return super().to_representation(instance)


def _holds_field():
    return HoldSerializer(
        many=True,
        read_only=True,
        source="covering_holds",
        help_text="The active holds that cover it: what stops its rollout now.",
    )


class NoteField(StrictCharField):
    """Why the change was made: optional, trimmed, at most 500 characters, no control
    characters (`releases.history.note_clean` decides, for the admin and the API alike)."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            allow_null=True,
            allow_blank=True,
            max_length=NOTE_MAX_LENGTH,
            # Published in the schema; note_clean checks the text as sent, before trimming.
            validators=[PatternValidator(PRINTABLE_TEXT_PATTERN, "No control characters.")],
            help_text="Why: stored with the change's history entry and written in the log. "
            "Trimmed; at most 500 characters.",
            **kwargs,
        )

    def to_internal_value(self, data):
        try:
            return note_clean(super().to_internal_value(data))
        except DomainError as error:
            raise serializers.ValidationError(error.fields["note"]) from None


RESULT_NOTE_HELP = (
    "The note recorded with this change; empty when nothing changed or none was given."
)


class ReleaseSerializer(CoveringHoldsMixin, serializers.ModelSerializer):
    app = serializers.CharField(source="application.name", read_only=True)
    tag_updated_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who switched it last; null if nobody did, or that user was deleted.",
    )
    holds = _holds_field()

    @staticmethod
    def holds_of(instances) -> dict:
        return holds_covering_releases(releases=instances)

    class Meta:
        model = ReleaseApp
        list_serializer_class = CoveringHoldsListSerializer
        fields = [
            "id",
            "batch",
            "app",
            "status",
            "image_tag",
            "build",
            "latest_image_tag",
            "latest_build",
            "latest_seen_at",
            "has_new_tag",
            "tag_updated_at",
            "tag_updated_by",
            "created_at",
            "holds",
        ]
        read_only_fields = fields


class BatchSerializer(CoveringHoldsMixin, serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Null once that user was deleted.",
    )
    release_count = serializers.IntegerField(read_only=True)
    new_tag_count = serializers.IntegerField(
        read_only=True, help_text="Releases whose app has a newer tag than the chosen one."
    )
    holds = _holds_field()

    @staticmethod
    def holds_of(instances) -> dict:
        return holds_covering_batches(batches=instances)

    class Meta:
        model = Batch
        list_serializer_class = CoveringHoldsListSerializer
        fields = [
            "id",
            "name",
            "status",
            "created_by",
            "created_at",
            "updated_at",
            "release_count",
            "new_tag_count",
            "holds",
        ]
        read_only_fields = fields


class BatchDetailSerializer(BatchSerializer):
    releases = ReleaseSerializer(many=True, read_only=True)

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "releases"]
        read_only_fields = fields


class BatchAppChoiceSerializer(serializers.Serializer):
    name = AppNameField(
        help_text="An application Release Train knows (else 400 `unknown_app`).",
    )
    image_tag = ImageTagField(
        required=False,
        allow_null=True,
        help_text="A tag of one of the app's successful builds (else 400 `unknown_tag`). "
        "Defaults to the tag of its latest successful build.",
    )


class BatchCreateSerializer(serializers.Serializer):
    name = StrictCharField(
        max_length=200,
        validators=[PatternValidator(NAME_TEXT_PATTERN, "Must be visible text.")],
    )
    apps = BatchAppChoiceSerializer(many=True, allow_empty=False, max_length=1000)

    def validate_apps(self, apps: list[dict]) -> list[dict]:
        # A rule across items, which the schema cannot state: its own code, like the webhook's.
        names = [app["name"] for app in apps]
        if len(set(names)) != len(names):
            raise DomainError(
                "duplicate_app", fields={"apps": [_("Each application may appear once.")]}
            )
        return apps


class BatchResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the effect already held.")
    batch = BatchDetailSerializer()
    deployments = DeploymentSerializer(
        many=True, help_text="Deployments this request queued or cancelled."
    )
    note = serializers.CharField(help_text=RESULT_NOTE_HELP)


class StageRequestSerializer(serializers.Serializer):
    note = NoteField()


class SwitchVersionSerializer(serializers.Serializer):
    image_tag = ImageTagField(
        required=False,
        allow_null=True,
        help_text="The tag to switch to; null or absent: the release's latest_image_tag.",
    )
    expected_image_tag = ImageTagField(
        required=False,
        allow_null=True,
        help_text="Switch only if the release is still at this tag (else 409 stale_version).",
    )
    note = NoteField()


class SwitchResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    release = ReleaseSerializer()
    previous_image_tag = serializers.CharField()
    deployment = DeploymentSerializer(
        allow_null=True, help_text="The new pending pre deployment; null when nothing changed."
    )
    superseded_deployment_ids = serializers.ListField(child=serializers.IntegerField())
    batch_status = serializers.ChoiceField(choices=BatchStatus.choices)
    note = serializers.CharField(help_text=RESULT_NOTE_HELP)


class HistoryObjectSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["batch", "release"], source="object_type")
    id = serializers.IntegerField(source="object_id")
    repr = serializers.CharField(source="object_repr", help_text="As it read when recorded.")


class HistoryEntrySerializer(serializers.Serializer):
    """Serialises a `releases.history.HistoryEntry`."""

    at = serializers.DateTimeField()
    user = serializers.CharField(
        allow_null=True,
        help_text="Who did it; `release-train` for what Release Train did itself (a stage's "
        "outcome); null once that user was deleted.",
    )
    action = serializers.ChoiceField(choices=HistoryAction.choices)
    object = HistoryObjectSerializer(source="*")
    message = serializers.CharField(help_text="What happened, in the reader's language.")
    note = serializers.CharField(help_text="Why, as its author wrote it; empty if none.")


class SwitchBlockerSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class ReleaseBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = Batch
        fields = ["id", "name", "status"]
        read_only_fields = fields


class ReleaseStatusSerializer(serializers.Serializer):
    """Serialises a `ReleaseStatusView`."""

    id = serializers.IntegerField(source="release.id")
    app = serializers.CharField(source="release.application.name")
    batch = ReleaseBatchSerializer(source="release.batch")
    status = serializers.ChoiceField(source="release.status", choices=ReleaseStatus.choices)
    image_tag = serializers.CharField(source="release.image_tag")
    latest_image_tag = serializers.CharField(source="release.latest_image_tag")
    has_new_tag = serializers.BooleanField(source="release.has_new_tag")
    latest_build_number = serializers.IntegerField(
        source="release.latest_build.number", allow_null=True, default=None
    )
    tag_updated_at = serializers.DateTimeField(source="release.tag_updated_at", allow_null=True)
    tag_updated_by = serializers.CharField(
        source="release.tag_updated_by.username", allow_null=True, default=None
    )
    can_switch = serializers.BooleanField(
        help_text="Whether you could switch to the latest tag now (permission, batch open and waiting, "
        "no hold, nothing deploying)."
    )
    switch_blockers = SwitchBlockerSerializer(many=True)
    holds = HoldSerializer(
        many=True,
        source="release.covering_holds",
        help_text="The active holds that cover this release.",
    )
    current_deployments = DeploymentSerializer(many=True)
    history = DeploymentSerializer(many=True, help_text="Newest first, at most 50.")

    def to_representation(self, instance):
        """The fields above, written out (as `DeploymentSerializer` does, for the same reason:
        the status is the API's hot read). `tests/releases/api/test_releases.py` holds this equal to
        DRF's per-field machinery."""
        release, deployment = instance.release, DeploymentSerializer(context=self.context)
        batch, latest_build, updated_by = (
            release.batch,
            release.latest_build,
            release.tag_updated_by,
        )
        return {
            "id": release.id,
            "app": release.application.name,
            "batch": {"id": batch.id, "name": batch.name, "status": batch.status},
            "status": release.status,
            "image_tag": release.image_tag,
            "latest_image_tag": release.latest_image_tag,
            "has_new_tag": release.has_new_tag,
            "latest_build_number": latest_build.number if latest_build is not None else None,
            "tag_updated_at": datetime_text(release.tag_updated_at),
            "tag_updated_by": updated_by.username if updated_by is not None else None,
            "can_switch": instance.can_switch,
            "switch_blockers": [
                {"code": b.code, "detail": b.detail} for b in instance.switch_blockers
            ],
            "holds": HoldSerializer(release.covering_holds, many=True, context=self.context).data,
            "current_deployments": [
                deployment.to_representation(d) for d in instance.current_deployments
            ],
            "history": [deployment.to_representation(d) for d in instance.history],
        }


class DeploymentAttemptSerializer(serializers.Serializer):
    """A deployment as the applications overview names it; serialises a `DeploymentFact`."""

    image_tag = serializers.CharField()
    deployment_id = serializers.IntegerField(source="id")
    batch_id = serializers.IntegerField()
    release_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DeploymentStatus.choices)
    finished_at = serializers.DateTimeField(allow_null=True)
    started_by = serializers.CharField(
        allow_null=True,
        help_text="Who queued the deployment: the stage start, or the switch that made it.",
    )
    error = serializers.CharField()


class EnvironmentNowSerializer(serializers.Serializer):
    """Serialises an `EnvironmentNow`: what runs, and a newer failed attempt if there is one."""

    image_tag = serializers.CharField(
        source="running.image_tag",
        allow_null=True,
        help_text="The tag running now; null if only failed attempts ever reached here.",
    )
    deployment_id = serializers.IntegerField(source="running.id", allow_null=True)
    batch_id = serializers.IntegerField(source="running.batch_id", allow_null=True)
    release_id = serializers.IntegerField(source="running.release_id", allow_null=True)
    finished_at = serializers.DateTimeField(source="running.finished_at", allow_null=True)
    started_by = serializers.CharField(source="running.started_by", allow_null=True)
    behind = serializers.BooleanField(
        help_text="Runs a tag other than the latest successful build's."
    )
    last_failed = DeploymentAttemptSerializer(
        allow_null=True,
        help_text="A failed attempt newer than what runs (failed, or cancelled after its Job "
        "started); it did not replace it.",
    )


class LatestBuildSerializer(serializers.Serializer):
    """Serialises a `LatestBuild`."""

    image_tag = serializers.CharField()
    build_id = serializers.IntegerField()
    build_number = serializers.IntegerField()
    built_at = serializers.DateTimeField(help_text="When we learned the build succeeded.")


class ApplicationEnvironmentsSerializer(serializers.Serializer):
    pre = EnvironmentNowSerializer(allow_null=True, help_text="null: never deployed to pre.")
    prod = EnvironmentNowSerializer(allow_null=True, help_text="null: never deployed to prod.")


class ApplicationOverviewSerializer(serializers.Serializer):
    """Serialises an `ApplicationOverview`: what runs where, and what is newer."""

    name = serializers.CharField()
    latest = LatestBuildSerializer(
        allow_null=True,
        help_text="The latest successful build (within a repo the highest number, across repos "
        "the most recently successful); null if none.",
    )
    environments = ApplicationEnvironmentsSerializer()
    open_releases = serializers.SerializerMethodField(
        help_text="Ids of this app's releases in open batches."
    )

    def get_open_releases(self, overview) -> list[int]:
        return [release.id for release in overview.open_releases]


class HoldCreateSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, help_text="Why the line stops; 1 to 500 characters.")
    environment = serializers.ChoiceField(
        choices=Environment.choices,
        required=False,
        allow_null=True,
        help_text="Stop only this environment; absent or null: every environment.",
    )
    application = AppNameField(
        required=False,
        allow_null=True,
        help_text="Stop only this application (by name; else 400 `unknown_app`). Not with `batch`.",
    )
    batch = StrictIntegerField(
        min_value=1,
        max_value=2**63 - 1,  # a bigint id
        required=False,
        allow_null=True,
        help_text="Stop only this open batch (by id; a closed one: 409 `batch_closed`). Not "
        "with `application`.",
    )
    starts_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it starts; absent: now. A future start plans a freeze window.",
    )
    ends_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it ends by itself (after `starts_at`, in the future); absent: when lifted.",
    )


class HoldLiftSerializer(serializers.Serializer):
    note = NoteField()


class HoldResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(
        help_text="False when the effect already held (the same hold placed again, or lifted "
        "or ended already)."
    )
    hold = HoldSerializer()


class YouMaySerializer(serializers.Serializer):
    switch_version = serializers.BooleanField(
        help_text="You may switch this app's releases (the permission globally or for this app)."
    )
    deploy_batch = serializers.BooleanField(
        help_text="You hold deploy_batch globally or for this app; starting or cancelling a "
        "batch needs it for every application in the batch."
    )


class ApplicationDetailSerializer(ApplicationOverviewSerializer):
    """One application, with what the requester may do to it."""

    you_may = serializers.SerializerMethodField()

    @extend_schema_field(YouMaySerializer)
    def get_you_may(self, overview) -> dict:
        return self.context["you_may"]  # the view's answer for the requester
