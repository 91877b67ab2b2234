"""Drone's webhook, the entry point of ingestion: builds/ parses and checks the request, the
releases workflows record it and detect new tags."""

import json

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from builds.api.examples import DRONE_EXAMPLE
from builds.api.serializers import BuildNotificationSerializer, BuildNotifyResultSerializer
from builds.api.webhook import CanNotifyBuild, WebhookSignatureAuthentication, webhook_body
from builds.choices import BuildStatus
from builds.metrics import builds_notified
from builds.notifications import BuildNotification, unknown_apps_refuse
from releases.services import ingest_build_notification
from utilities.api.authentication import BearerTokenAuthentication
from utilities.api.schema import error_responses
from utilities.errors import DomainError


class BuildNotifyView(APIView):
    """Drone's webhook: record a build and, when it first succeeds, detect new tags."""

    authentication_classes = [WebhookSignatureAuthentication, BearerTokenAuthentication]
    permission_classes = [CanNotifyBuild]
    parser_classes = [JSONParser]  # documents the body; the view parses the raw bytes itself

    def initial(self, request, *args, **kwargs):
        # Size first: the signature check reads the body, and nothing may read an oversize one.
        webhook_body(request)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="builds_notify",
        summary="Notify a build (Drone webhook)",
        description=(
            "Idempotent: a known build with the same status and no new apps is a `duplicate`, "
            "an older status is `stale`; neither changes anything. A known build sent again "
            "with apps it did not have yet merges them (and detects them if it succeeded); an "
            "app it recorded at another tag is 409 `conflicting_image` and nothing is written. "
            "Authenticate with a token of a user holding `builds.notify_build`, or sign the raw "
            "body (`X-Signature-256`)."
        ),
        request=BuildNotificationSerializer,
        responses={
            201: BuildNotifyResultSerializer,
            200: BuildNotifyResultSerializer,
            **error_responses(400, 401, 403, 409, 413, 503),
        },
        examples=[
            OpenApiExample("Drone payload", value=DRONE_EXAMPLE, request_only=True),
            OpenApiExample(
                "First seen, new tag detected",
                value={
                    "build": {"id": 42, "repo": "org/shop", "number": 11, "status": "success"},
                    "duplicate": False,
                    "stale": False,
                    "new_tags": [{"app": "api", "image_tag": "v1.2.4", "release_ids": [7]}],
                },
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "Sent again",
                value={
                    "build": {"id": 42, "repo": "org/shop", "number": 11, "status": "success"},
                    "duplicate": True,
                    "stale": False,
                    "new_tags": [],
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Another tag for a recorded app",
                value={
                    "code": "conflicting_image",
                    "detail": "Build 11 of org/shop already recorded api at v1.2.4.",
                    "fields": {"apps": ["api: this build recorded v1.2.4, not v1.2.5."]},
                },
                response_only=True,
                status_codes=["409"],
            ),
            OpenApiExample(
                "Invalid tag",
                value={
                    "code": "invalid",
                    "detail": "The build notification is not valid.",
                    "fields": {"apps": ["apps[0].image_tag: not a valid OCI image tag."]},
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    def post(self, request):
        data = None
        try:
            data = _json(webhook_body(request))
            notification = BuildNotification.parse(data)
            unknown_apps_refuse(notification=notification)
        except DomainError:
            builds_notified.labels(status=_status_label(data), result="rejected").inc()
            raise
        result = ingest_build_notification(notification=notification)
        return Response(
            BuildNotifyResultSerializer(result).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DomainError("invalid", f"The body is not valid JSON: {exc}") from None


def _status_label(data) -> str:
    """The notified status for the rejection metric, if it is one (labels stay bounded)."""
    value = data.get("build_status") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value in BuildStatus.values else "unknown"
