"""Request and response examples for the schema; the values are those of a real run."""

from drf_spectacular.utils import OpenApiExample

from deployments.api.examples import DEPLOYMENT


def _error(code: str, detail: str, fields: dict | None = None) -> dict:
    return {"code": code, "detail": detail, "fields": fields or {}}


HOLD = {
    "id": 4,
    "reason": "holiday freeze",
    "environment": "prod",
    "application": None,
    "batch": None,
    "created_by": "alice",
    "created_at": "2026-12-01T09:00:00Z",
    "starts_at": "2026-12-20T18:00:00Z",
    "ends_at": "2026-12-24T18:00:00Z",
    "lifted_by": None,
    "lifted_at": None,
    "lift_note": "",
    "active": True,
}

RELEASE = {
    "id": 7,
    "batch": 3,
    "app": "api",
    "status": "pending",
    "image_tag": "v1.2.4",
    "build": 42,
    "latest_image_tag": "v1.2.4",
    "latest_build": 42,
    "latest_seen_at": "2026-11-27T10:02:00Z",
    "has_new_tag": False,
    "tag_updated_at": "2026-11-27T10:05:00Z",
    "tag_updated_by": "alice",
    "created_at": "2026-11-27T09:00:00Z",
    "holds": [],
}


BATCH = {
    "id": 3,
    "name": "2026-11 shop",
    "status": "pre_deploying",
    "created_by": "alice",
    "created_at": "2026-11-27T09:00:00Z",
    "updated_at": "2026-11-27T10:06:00Z",
    "release_count": 1,
    "new_tag_count": 0,
    "holds": [],
    "releases": [{**RELEASE, "status": "pre_deploying"}],
}

BATCH_CREATE = OpenApiExample(
    "Create a batch",
    value={"name": "2026-11 shop", "apps": [{"name": "api"}, {"name": "web", "image_tag": "w7"}]},
    request_only=True,
)
BATCH_CREATED = OpenApiExample(
    "Created",
    value={
        "changed": True,
        "batch": {**BATCH, "status": "pre_waiting", "releases": [RELEASE]},
        "deployments": [],
        "note": "",
    },
    response_only=True,
    status_codes=["201"],
)
BATCH_FOUND = OpenApiExample(
    "Sent again: the batch it made",
    value={
        "changed": False,
        "batch": {**BATCH, "status": "pre_waiting", "releases": [RELEASE]},
        "deployments": [],
        "note": "",
    },
    response_only=True,
    status_codes=["200"],
)
BATCH_CANCELLED = OpenApiExample(
    "Cancelled",
    value={
        "changed": True,
        "batch": {**BATCH, "status": "cancelled"},
        "deployments": [
            {**DEPLOYMENT, "status": "cancelled", "finished_at": "2026-11-27T10:09:00Z"}
        ],
        "note": "Superseded by the 2026-12 batch.",
    },
    response_only=True,
    status_codes=["200"],
)
UNKNOWN_APP = OpenApiExample(
    "Unknown application",
    value=_error(
        "unknown_app",
        "No application named shop-worker.",
        {"apps": ["Unknown application: shop-worker"]},
    ),
    response_only=True,
    status_codes=["400"],
)
BATCH_RESULT = OpenApiExample(
    "Stage started",
    value={
        "changed": True,
        "batch": BATCH,
        "deployments": [DEPLOYMENT],
        "note": "Payments signed off the release notes.",
    },
    response_only=True,
    status_codes=["200"],
)
STAGE_REQUEST = OpenApiExample(
    "With a note",
    value={"note": "Payments signed off the release notes."},
    request_only=True,
)
INVALID_NOTE = OpenApiExample(
    "Note too long",
    value=_error(
        "invalid",
        "The request is not valid.",
        {"note": ["Ensure this field has no more than 500 characters."]},
    ),
    response_only=True,
    status_codes=["400"],
)
INVALID_TRANSITION = OpenApiExample(
    "Not possible now",
    value=_error(
        "invalid_transition", "The batch is completed; pre can only start from pre_waiting."
    ),
    response_only=True,
    status_codes=["409"],
)
CANCEL_COMPLETED = OpenApiExample(
    "Already completed",
    value=_error("invalid_transition", "A completed batch cannot be cancelled."),
    response_only=True,
    status_codes=["409"],
)

SWITCH_REQUEST = OpenApiExample(
    "Switch to a tag if still at the expected one",
    value={
        "image_tag": "v1.2.4",
        "expected_image_tag": "v1.2.3",
        "note": "Fixes the checkout timeout (INC-481).",
    },
    request_only=True,
)
SWITCHED = OpenApiExample(
    "Switched",
    value={
        "changed": True,
        "release": RELEASE,
        "previous_image_tag": "v1.2.3",
        "deployment": DEPLOYMENT,
        "superseded_deployment_ids": [12],
        "batch_status": "pre_waiting",
        "note": "Fixes the checkout timeout (INC-481).",
    },
    response_only=True,
    status_codes=["200"],
)
UNKNOWN_TAG = OpenApiExample(
    "Tag not from a successful build",
    value=_error(
        "unknown_tag",
        "No successful build of api produced v9.",
        {"image_tag": ["Not a tag of a successful build of this application."]},
    ),
    response_only=True,
    status_codes=["400"],
)
BATCH_NOT_WAITING = OpenApiExample(
    "Batch is deploying",
    value=_error(
        "batch_not_waiting", "The batch is deploying to pre; switch once its stage has finished."
    ),
    response_only=True,
    status_codes=["409"],
)
BATCH_CLOSED = OpenApiExample(
    "Batch is closed",
    value=_error("batch_closed", "The batch is completed; it can no longer change."),
    response_only=True,
    status_codes=["409"],
)

STATUS = OpenApiExample(
    "Blocked while deploying",
    value={
        "id": 7,
        "app": "api",
        "batch": {"id": 3, "name": "2026-11 shop", "status": "pre_deploying"},
        "status": "pre_deploying",
        "image_tag": "v1.2.3",
        "latest_image_tag": "v1.2.4",
        "has_new_tag": True,
        "latest_build_number": 11,
        "tag_updated_at": None,
        "tag_updated_by": None,
        "can_switch": False,
        "switch_blockers": [
            {
                "code": "batch_not_waiting",
                "detail": "The batch is deploying to pre; switch once its stage has finished.",
            },
            {
                "code": "deployment_in_progress",
                "detail": "A deployment of this release is running.",
            },
        ],
        "holds": [],
        "current_deployments": [
            {**DEPLOYMENT, "image_tag": "v1.2.3", "status": "running", "job_name": "rt-deploy-19"}
        ],
        "history": [
            {**DEPLOYMENT, "image_tag": "v1.2.3", "status": "running", "job_name": "rt-deploy-19"}
        ],
    },
    response_only=True,
)

APPLICATION = {
    "name": "api",
    "latest": {
        "image_tag": "v1.4.3",
        "build_id": 57,
        "build_number": 58,
        "built_at": "2026-11-27T11:40:00Z",
    },
    "environments": {
        "pre": {
            "image_tag": "v1.4.3",
            "deployment_id": 31,
            "batch_id": 5,
            "release_id": 12,
            "finished_at": "2026-11-27T11:52:00Z",
            "started_by": "alice",
            "behind": False,
            "last_failed": None,
        },
        "prod": {
            "image_tag": "v1.4.1",
            "deployment_id": 19,
            "batch_id": 3,
            "release_id": 7,
            "finished_at": "2026-11-26T16:05:00Z",
            "started_by": "bob",
            "behind": True,
            "last_failed": {
                "image_tag": "v1.4.2",
                "deployment_id": 27,
                "batch_id": 4,
                "release_id": 10,
                "status": "failed",
                "finished_at": "2026-11-27T10:20:00Z",
                "started_by": "alice",
                "error": "Job rt-deploy-27 failed: BackoffLimitExceeded",
            },
        },
    },
    "open_releases": [12],
}
# One application: the list's fields and what the requester may do to it.
APPLICATION_DETAIL = {**APPLICATION, "you_may": {"switch_version": True, "deploy_batch": False}}

HOLD_CREATE = OpenApiExample(
    "Freeze prod for the holidays",
    value={
        "reason": "holiday freeze",
        "environment": "prod",
        "starts_at": "2026-12-20T18:00:00Z",
        "ends_at": "2026-12-24T18:00:00Z",
    },
    request_only=True,
)
HOLD_CREATED = OpenApiExample(
    "Placed",
    value={"changed": True, "hold": HOLD},
    response_only=True,
    status_codes=["201"],
)
HOLD_INVALID = OpenApiExample(
    "Application and batch both named",
    value=_error(
        "invalid_hold",
        "The hold is not valid.",
        {"batch": ["A hold names an application or a batch, not both."]},
    ),
    response_only=True,
    status_codes=["400"],
)
HOLD_LIFT = OpenApiExample(
    "Lift with a note", value={"note": "incident resolved"}, request_only=True
)
HOLD_LIFTED = OpenApiExample(
    "Lifted",
    value={
        "changed": True,
        "hold": {
            **HOLD,
            "lifted_by": "bob",
            "lifted_at": "2026-12-22T08:00:00Z",
            "lift_note": "incident resolved",
            "active": False,
        },
    },
    response_only=True,
    status_codes=["200"],
)
ON_HOLD = OpenApiExample(
    "On hold",
    value=_error("on_hold", "Prod is on hold until 2026-12-24 18:00 UTC: holiday freeze (alice)."),
    response_only=True,
    status_codes=["409"],
)

# One entry; the schema shows it as a page of them.
HISTORY_ENTRY = {
    "at": "2026-11-27T10:05:00Z",
    "user": "alice",
    "action": "version_switched",
    "object": {"type": "release", "id": 7, "repr": "api @ v1.2.3"},
    "message": "Switched api from v1.2.3 to v1.2.4; new pre deployment #13 waits for the "
    "pre rollout.",
    "note": "Fixes the checkout timeout (INC-481).",
}
