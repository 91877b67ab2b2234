import dataclasses

from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from applications.models import Application
from applications.permissions import you_may
from deployments.models import Deployment
from releases import services
from releases.filtersets import (
    ApplicationFilterSet,
    BatchFilterSet,
    HoldFilterSet,
    ReleaseFilterSet,
)
from releases.history import batch_history, entry_read
from releases.models import Batch, ReleaseApp
from releases.overview import (
    application_overview_get,
    application_overviews,
    applications_overview,
)
from releases.selectors import holds_list, release_status
from releases.services.batches import AppChoice
from releases.services.holds import hold_lift, hold_place
from utilities.api.schema import error_responses, read_views_schema

from . import examples
from .serializers import (
    ApplicationDetailSerializer,
    ApplicationOverviewSerializer,
    BatchCreateSerializer,
    BatchDetailSerializer,
    BatchResultSerializer,
    BatchSerializer,
    HistoryEntrySerializer,
    HoldCreateSerializer,
    HoldLiftSerializer,
    HoldResultSerializer,
    HoldSerializer,
    ReleaseSerializer,
    ReleaseStatusSerializer,
    StageRequestSerializer,
    SwitchResultSerializer,
    SwitchVersionSerializer,
)

RELEASES = ReleaseApp.objects.select_related("application", "tag_updated_by")


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _stage_schema(summary: str, description: str, *conflicts, result=examples.BATCH_RESULT):
    return extend_schema(
        summary=summary,
        description=description
        + " Needs `applications.deploy_batch` globally or for every application of the batch "
        "(403 `permission_denied` naming the permission and the applications). Repeating it "
        "answers 200 with `changed: false`. An optional `note` says why; it is recorded in the "
        "batch's history.",
        request=StageRequestSerializer,
        responses={
            200: BatchResultSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
        examples=[examples.STAGE_REQUEST, result, examples.INVALID_NOTE, *conflicts],
    )


@read_views_schema(
    noun="batch",
    plural="batches",
    permission="releases.view_batch",
    serializer=BatchSerializer,
    example={k: v for k, v in examples.BATCH.items() if k != "releases"},
    detail_serializer=BatchDetailSerializer,
    detail_example=examples.BATCH,
)
class BatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = (
        Batch.objects.select_related("created_by")
        .annotate(
            release_count=Count("releases"),
            new_tag_count=Count("releases", filter=Q(releases__has_new_tag=True)),
        )
        .order_by("-created_at", "-pk")  # an aggregate drops Meta.ordering
    )
    serializer_class = BatchSerializer
    filterset_class = BatchFilterSet
    lookup_value_regex = r"\d+"
    # The services check deploy_batch for every application of the batch.
    action_permissions = {"start_pre_deploy": [], "start_prod_deploy": [], "cancel": []}

    def get_queryset(self):
        if self.action == "list":
            return self.queryset
        return self.queryset.prefetch_related(Prefetch("releases", queryset=RELEASES))

    def get_serializer_class(self):
        return BatchSerializer if self.action == "list" else BatchDetailSerializer

    @extend_schema(
        summary="Create a batch",
        description="Creates a batch of these apps at these tags (default: each app's latest "
        "successful tag). Needs `releases.add_batch`. Sending the same request again finds the "
        "batch it made: 200 with `changed: false`.",
        request=BatchCreateSerializer,
        responses={
            201: BatchResultSerializer,
            200: BatchResultSerializer,
            **error_responses(400, 401, 403, 409, 413, 415, 503),
        },
        examples=[
            examples.BATCH_CREATE,
            examples.BATCH_CREATED,
            examples.BATCH_FOUND,
            examples.UNKNOWN_APP,
        ],
    )
    def create(self, request):
        data = _validated(BatchCreateSerializer, request)
        result = services.create_batch(
            name=data["name"],
            apps=[AppChoice(a["name"], a.get("image_tag")) for a in data["apps"]],
            user=request.user,
        )
        return self._result(
            result, status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK
        )

    @_stage_schema(
        "Start the pre stage",
        "Queues a pre deployment for each release that is pending or failed pre; the "
        "reconciler runs them. Refused (409 `on_hold`) while a hold covers one of them.",
        examples.INVALID_TRANSITION,
        examples.ON_HOLD,
    )
    @action(detail=True, methods=["post"], url_path="start-pre-deploy")
    def start_pre_deploy(self, request, pk):
        note = _validated(StageRequestSerializer, request).get("note")
        return self._result(
            services.start_pre_deploy(batch_id=int(pk), user=request.user, note=note)
        )

    @_stage_schema(
        "Start the prod stage",
        "Queues a prod deployment for each release that passed pre or failed prod. Refused (409 "
        "`on_hold`) while a hold covers one of them.",
        examples.INVALID_TRANSITION,
        examples.ON_HOLD,
    )
    @action(detail=True, methods=["post"], url_path="start-prod-deploy")
    def start_prod_deploy(self, request, pk):
        note = _validated(StageRequestSerializer, request).get("note")
        return self._result(
            services.start_prod_deploy(batch_id=int(pk), user=request.user, note=note)
        )

    @_stage_schema(
        "Cancel the batch",
        "Cancels the batch and its unfinished deployments; their Jobs are deleted.",
        examples.CANCEL_COMPLETED,
        result=examples.BATCH_CANCELLED,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk):
        note = _validated(StageRequestSerializer, request).get("note")
        return self._result(services.cancel_batch(batch_id=int(pk), user=request.user, note=note))

    @extend_schema(
        summary="The batch's history",
        description="Its audit trail, newest first, paginated (`?page=`): the batch's creation, "
        "switches of its releases, stage starts, cancels, holds placed and lifted, and how "
        "each stage ended (recorded as the system user `release-train`), each with the note "
        "its author gave. `message` is in the reader's language (`Accept-Language`). Needs "
        "`releases.view_batch`.",
        responses={
            200: HistoryEntrySerializer(many=True),
            **error_responses(401, 403, 404),
        },
        examples=[
            OpenApiExample(
                "History", value=examples.HISTORY_ENTRY, response_only=True, status_codes=["200"]
            )
        ],
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def history(self, request, pk):
        batch = get_object_or_404(Batch.objects.only("pk"), pk=pk)
        page = self.paginate_queryset(batch_history(batch_id=batch.pk))
        entries = [entry_read(entry) for entry in page]
        return self.get_paginated_response(HistoryEntrySerializer(entries, many=True).data)

    def _result(self, result, status_code=status.HTTP_200_OK) -> Response:
        # Re-read: the service's rows are locked copies without counts, releases or users.
        batch = self.get_queryset().get(pk=result.batch.pk)
        deployments = Deployment.objects.select_related("created_by").filter(
            pk__in=[d.pk for d in result.deployments]
        )
        data = BatchResultSerializer(
            {
                "changed": result.changed,
                "batch": batch,
                "deployments": deployments,
                "note": result.note,
            },
            context=self.get_serializer_context(),
        ).data
        return Response(data, status=status_code)


@read_views_schema(
    noun="release",
    plural="releases",
    permission="releases.view_releaseapp",
    serializer=ReleaseSerializer,
    example=examples.RELEASE,
)
class ReleaseViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = RELEASES
    serializer_class = ReleaseSerializer
    filterset_class = ReleaseFilterSet
    lookup_value_regex = r"\d+"
    # The switch service checks switch_version for the release's application.
    action_permissions = {"switch_version": []}

    @extend_schema(
        summary="Switch a release to another image tag",
        description=(
            "Checked in this order, the first failure answers and nothing changes: permission "
            "`applications.switch_version` globally or for the release's application (403 "
            "`permission_denied`, naming the permission and the application); the target differs "
            "from the current tag (else 200 "
            "with `changed: false`: the effect already holds, so a retried switch succeeds even "
            "with the `expected_image_tag` it was first sent with); `expected_image_tag` equals "
            "the current tag (409 `stale_version`); the target came from a successful build of "
            "this app (400 `unknown_tag`); the batch is not completed or cancelled (409 "
            "`batch_closed`); the batch waits (409 `batch_not_waiting`); no active hold names the "
            "release's application or batch (409 `on_hold`); no deployment of the "
            "release is in progress (409 `deployment_in_progress`). A switch in `prod_waiting` "
            "sends the batch back to `pre_waiting`. The new pre deployment takes the "
            "application's current `deploy_config`."
        ),
        request=SwitchVersionSerializer,
        responses={
            200: SwitchResultSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
        examples=[
            examples.SWITCH_REQUEST,
            examples.SWITCHED,
            examples.UNKNOWN_TAG,
            examples.BATCH_CLOSED,
            examples.BATCH_NOT_WAITING,
            examples.ON_HOLD,
        ],
    )
    @action(detail=True, methods=["post"], url_path="switch-version")
    def switch_version(self, request, pk):
        data = _validated(SwitchVersionSerializer, request)
        result = services.switch_version(
            release_id=int(pk),
            user=request.user,
            image_tag=data.get("image_tag"),
            expected_image_tag=data.get("expected_image_tag"),
            note=data.get("note"),
        )
        # Re-read: has_new_tag is computed by the database.
        result = dataclasses.replace(result, release=self.queryset.get(pk=result.release.pk))
        return Response(SwitchResultSerializer(result, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="A release's switch status and deployment history",
        description="`can_switch` and `switch_blockers` are evaluated for you, by the code the "
        "switch itself runs.",
        responses={
            200: OpenApiResponse(ReleaseStatusSerializer, examples=[examples.STATUS]),
            **error_responses(401, 403, 404),
        },
    )
    @action(detail=True, methods=["get"], url_path="status")
    def switch_status(self, request, pk):
        return Response(
            ReleaseStatusSerializer(
                release_status(release_id=int(pk), user=request.user),
                context=self.get_serializer_context(),
            ).data
        )


@read_views_schema(
    noun="application",
    plural="applications",
    permission="applications.view_application",
    serializer=ApplicationOverviewSerializer,
    example=examples.APPLICATION,
    detail_serializer=ApplicationDetailSerializer,
    detail_example=examples.APPLICATION_DETAIL,
)
class ApplicationViewSet(viewsets.GenericViewSet):
    """What runs where: per application, the tag running in pre and prod and the latest build."""

    queryset = Application.objects.all()  # the model, for permissions; rows come from below
    serializer_class = ApplicationOverviewSerializer
    filterset_class = ApplicationFilterSet
    lookup_field = "name"
    # The name grammar's characters and length; a name outside the full grammar is a 404 too.
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"

    def get_queryset(self):
        return applications_overview()

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        overviews = application_overviews(applications=page)
        return self.get_paginated_response(self.get_serializer(overviews, many=True).data)

    def retrieve(self, request, name):
        overview = application_overview_get(name=name)
        context = {
            **self.get_serializer_context(),
            "you_may": you_may(request.user, overview.application),
        }
        return Response(ApplicationDetailSerializer(overview, context=context).data)


@read_views_schema(
    noun="hold",
    plural="holds",
    permission="releases.view_hold",
    serializer=HoldSerializer,
    example=examples.HOLD,
)
class HoldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Holds stop the line: while active, nothing they cover is deployed."""

    queryset = holds_list()
    serializer_class = HoldSerializer
    filterset_class = HoldFilterSet
    lookup_value_regex = r"\d+"
    # Per application or global: the services check `applications.add_hold` / `lift_hold`.
    action_permissions = {"create": [], "lift": []}

    @extend_schema(
        summary="Place a hold",
        description="While active (from `starts_at`, default now, until `ends_at` or its lift) "
        "no deployment it covers is launched and a stage start that would queue one is refused "
        "(409 `on_hold`); a hold naming an application or a batch also refuses their switches. "
        "Every field it sets must match: none set stops everything. Needs "
        "`applications.add_hold` for its application, or globally for any other hold. The same "
        "hold placed again by you while it holds answers 200 with `changed: false`.",
        request=HoldCreateSerializer,
        responses={
            201: HoldResultSerializer,
            200: HoldResultSerializer,
            **error_responses(400, 401, 403, 409, 413, 415, 503),
        },
        examples=[examples.HOLD_CREATE, examples.HOLD_CREATED, examples.HOLD_INVALID],
    )
    def create(self, request):
        data = _validated(HoldCreateSerializer, request)
        result = hold_place(
            user=request.user,
            reason=data["reason"],
            environment=data.get("environment") or "",
            application=data.get("application"),
            batch_id=data.get("batch"),
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
        )
        return Response(
            HoldResultSerializer(result).data,
            status=status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Lift a hold",
        description="What it held back launches at once. Needs `applications.lift_hold` for "
        "its application, or globally for any other hold. A hold already lifted or ended "
        "answers 200 with `changed: false`.",
        request=HoldLiftSerializer,
        responses={
            200: HoldResultSerializer,
            **error_responses(400, 401, 403, 404, 413, 415, 503),
        },
        examples=[examples.HOLD_LIFT, examples.HOLD_LIFTED],
    )
    @action(detail=True, methods=["post"])
    def lift(self, request, pk):
        data = _validated(HoldLiftSerializer, request)
        result = hold_lift(hold_id=int(pk), user=request.user, note=data.get("note") or "")
        return Response(HoldResultSerializer(result).data)
