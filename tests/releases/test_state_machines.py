"""Every allowed and every forbidden transition of the three state machines."""

import pytest
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from deployments.choices import DeploymentStatus
from deployments.models import Deployment
from releases.choices import BatchStatus, ReleaseStatus
from releases.models import Batch, ReleaseApp

BATCH_TRANSITIONS = {
    "start_pre_deploy": ({BatchStatus.PRE_WAITING}, BatchStatus.PRE_DEPLOYING),
    "finish_pre_deploy": ({BatchStatus.PRE_DEPLOYING}, BatchStatus.PROD_WAITING),
    "fail_pre_deploy": ({BatchStatus.PRE_DEPLOYING}, BatchStatus.PRE_WAITING),
    "start_prod_deploy": ({BatchStatus.PROD_WAITING}, BatchStatus.PROD_DEPLOYING),
    "finish_prod_deploy": ({BatchStatus.PROD_DEPLOYING}, BatchStatus.COMPLETED),
    "fail_prod_deploy": ({BatchStatus.PROD_DEPLOYING}, BatchStatus.PROD_WAITING),
    "reopen_pre": ({BatchStatus.PROD_WAITING}, BatchStatus.PRE_WAITING),
    "cancel": (
        set(BatchStatus) - {BatchStatus.COMPLETED, BatchStatus.CANCELLED},
        BatchStatus.CANCELLED,
    ),
}

RELEASE_TRANSITIONS = {
    "start_pre": ({ReleaseStatus.PENDING, ReleaseStatus.PRE_FAILED}, ReleaseStatus.PRE_DEPLOYING),
    "finish_pre": ({ReleaseStatus.PRE_DEPLOYING}, ReleaseStatus.PRE_DEPLOYED),
    "fail_pre": ({ReleaseStatus.PRE_DEPLOYING}, ReleaseStatus.PRE_FAILED),
    "start_prod": (
        {ReleaseStatus.PRE_DEPLOYED, ReleaseStatus.PROD_FAILED},
        ReleaseStatus.PROD_DEPLOYING,
    ),
    "finish_prod": ({ReleaseStatus.PROD_DEPLOYING}, ReleaseStatus.PROD_DEPLOYED),
    "fail_prod": ({ReleaseStatus.PROD_DEPLOYING}, ReleaseStatus.PROD_FAILED),
    "switch_version": (
        {
            ReleaseStatus.PENDING,
            ReleaseStatus.PRE_DEPLOYED,
            ReleaseStatus.PRE_FAILED,
            ReleaseStatus.PROD_DEPLOYED,
            ReleaseStatus.PROD_FAILED,
        },
        ReleaseStatus.PENDING,
    ),
}

NOW = timezone.now()
DEPLOYMENT_TRANSITIONS = {
    "start": ({DeploymentStatus.PENDING}, DeploymentStatus.RUNNING, {"at": NOW}),
    "succeed": ({DeploymentStatus.RUNNING}, DeploymentStatus.SUCCEEDED, {"at": NOW}),
    "fail": (
        {DeploymentStatus.PENDING, DeploymentStatus.RUNNING},
        DeploymentStatus.FAILED,
        {"at": NOW, "error": "Job failed"},
    ),
    "cancel": (
        {DeploymentStatus.PENDING, DeploymentStatus.RUNNING},
        DeploymentStatus.CANCELLED,
        {"at": NOW},
    ),
}
SWITCH_ARGS = {"image_tag": "v2", "build": None, "user": None, "at": NOW}


def _cases(transitions, states) -> list:
    return [
        pytest.param(name, state, target if state in sources else None, id=f"{name}-{state}")
        for name, (sources, target, *_) in transitions.items()
        for state in states
    ]


@pytest.mark.parametrize(("name", "state", "target"), _cases(BATCH_TRANSITIONS, BatchStatus))
def test_batch_transitions(name, state, target):
    batch = Batch(name="b", status=state)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(batch, name)()
        assert batch.status == state
    else:
        getattr(batch, name)()
        assert batch.status == target


@pytest.mark.parametrize(("name", "state", "target"), _cases(RELEASE_TRANSITIONS, ReleaseStatus))
def test_release_transitions(name, state, target):
    release = ReleaseApp(image_tag="v1", status=state)
    kwargs = SWITCH_ARGS if name == "switch_version" else {}
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(release, name)(**kwargs)
        assert (release.status, release.image_tag) == (state, "v1")
    else:
        getattr(release, name)(**kwargs)
        assert release.status == target


def test_switch_version_records_the_new_tag_and_who_switched():
    release = ReleaseApp(image_tag="v1", status=ReleaseStatus.PROD_DEPLOYED)
    release.switch_version(image_tag="v2", build=None, user=None, at=NOW)
    assert (release.image_tag, release.tag_updated_at, release.status) == ("v2", NOW, "pending")


@pytest.mark.parametrize(
    ("name", "state", "target"), _cases(DEPLOYMENT_TRANSITIONS, DeploymentStatus)
)
def test_deployment_transitions(name, state, target):
    deployment = Deployment(environment="pre", image_tag="v1", status=state)
    kwargs = DEPLOYMENT_TRANSITIONS[name][2]
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(deployment, name)(**kwargs)
        assert deployment.status == state
    else:
        getattr(deployment, name)(**kwargs)
        assert deployment.status == target


def test_status_fields_cannot_be_assigned_by_hand():
    batch = Batch(name="b")
    with pytest.raises(AttributeError):
        batch.status = BatchStatus.COMPLETED


def test_superseding_a_pending_deployment_cancels_it_but_a_succeeded_one_stays_succeeded():
    pending = Deployment(environment="pre", image_tag="v1", status=DeploymentStatus.PENDING)
    succeeded = Deployment(
        environment="pre", image_tag="v1", status=DeploymentStatus.SUCCEEDED, job_name="rt-1"
    )

    pending.mark_superseded(at=NOW)
    succeeded.mark_superseded(at=NOW)

    assert (pending.status, pending.superseded_at, pending.cleanup_pending) == (
        "cancelled",
        NOW,
        False,
    )
    # Its Job still exists (until TTL); superseding schedules its deletion.
    assert (succeeded.status, succeeded.cleanup_pending) == ("succeeded", True)
