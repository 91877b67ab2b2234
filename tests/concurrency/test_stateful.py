"""Random sequences of every workflow, checking the invariants after each step.

Hypothesis drives notify, create batch, switch, stage starts, Job launches and outcomes (the
reconciler's part) and cancel, in any order and with any arguments, including the wrong ones.
Every step either changes the state legally or is refused with a domain error; after every
step the invariants in `invariants.py` hold. `make soak` raises the counts
(HARDENING_EXAMPLES, HARDENING_STEPS).
"""

import os
from itertools import count

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from builds.choices import BuildStatus
from deployments.choices import DeploymentStatus
from deployments.models import Deployment
from releases.choices import OPEN_BATCH_STATUSES, BatchStatus
from releases.models import Batch, ReleaseApp
from releases.selectors import application_tag_choices
from releases.services import (
    apply_deployment_outcome,
    cancel_batch,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.concurrency import invariants
from tests.factories import UserFactory
from tests.helpers import deployment_mark_running, notify
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db

APPS = ["api", "web", "worker"]
# Success dominates, as in real CI; the others exercise recording without detection.
STATUSES = [BuildStatus.SUCCESS] * 4 + [
    BuildStatus.RUNNING,
    BuildStatus.PENDING,
    BuildStatus.FAILURE,
    BuildStatus.ERROR,
]
EXAMPLES = int(os.environ.get("HARDENING_EXAMPLES", "25"))
STEPS = int(os.environ.get("HARDENING_STEPS", "30"))


def tag_of(app: str, number: int) -> str:
    # Two consecutive builds share a tag now and then, as a rebuild of one commit does.
    return f"{app}-1.{number // 2}"


def pick(rows: list, index: int):
    return rows[index % len(rows)] if rows else None


class Workflows(RuleBasedStateMachine):
    """Each example runs in a savepoint that is rolled back at teardown, so examples are
    independent while staying inside pytest-django's test transaction."""

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.names = count(1)
        self.user = UserFactory(
            username="operator",
            permissions=["applications.switch_version", "applications.deploy_batch"],
        )
        self.nobody = UserFactory(username="nobody")
        self.batch_ids: list[int] = []

    @initialize()
    def first_build(self):
        # Every app has a successful build, so batches can be made from the first step on.
        notify(1, {app: tag_of(app, 1) for app in APPS})

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    # --- what Drone does ---

    @rule(
        number=st.integers(1, 24),
        apps=st.sets(st.sampled_from(APPS), min_size=1),
        status=st.sampled_from(STATUSES),
    )
    def notify_build(self, number, apps, status):
        notify(number, {app: tag_of(app, number) for app in sorted(apps)}, status=status)

    # --- what people do ---

    # A few batches per example, so stage starts and outcomes meet the same batch often.
    @precondition(lambda self: Batch.objects.filter(status__in=OPEN_BATCH_STATUSES).count() < 3)
    @rule(
        apps=st.sets(st.sampled_from(APPS), min_size=1),
        older=st.booleans(),
        number=st.integers(1, 24),
    )
    def create(self, apps, older, number):
        choices = [AppChoice(a, tag_of(a, number) if older else None) for a in sorted(apps)]
        try:
            result = create_batch(name=f"batch {next(self.names)}", apps=choices, user=self.user)
        except DomainError as error:
            assert error.code in {"unknown_app", "unknown_tag", "no_successful_build"}
        else:
            self.batch_ids.append(result.batch.pk)

    @precondition(lambda self: self.batch_ids)
    @rule(
        index=st.integers(0, 99),
        to=st.sampled_from(["latest", "known", "known", "unknown"]),
        tag_index=st.integers(0, 99),
        expect=st.sampled_from(["none", "none", "current", "wrong"]),
        # Mostly permitted users: a refusal for permission ends the step early.
        permitted=st.sampled_from([True, True, True, False]),
    )
    def switch(self, index, to, tag_index, expect, permitted):
        # Releases of open batches mostly: switching a closed one only ever gets refused.
        releases = ReleaseApp.objects.select_related("application", "batch").order_by("pk")
        release = pick(
            list(releases.filter(batch__status__in=OPEN_BATCH_STATUSES)) or list(releases), index
        )
        before = release.batch.status
        expected = {"none": None, "current": release.image_tag, "wrong": "not-the-tag"}[expect]
        image_tag = {
            "latest": None,
            "known": pick(
                [
                    i.image_tag
                    for i in application_tag_choices(application_id=release.application_id)
                ],
                tag_index,
            ),
            "unknown": "never-built",
        }[to]
        try:
            result = switch_version(
                release_id=release.pk,
                user=self.user if permitted else self.nobody,
                image_tag=image_tag,
                expected_image_tag=expected,
            )
        except DomainError as error:
            assert error.code in {
                "permission_denied",
                "stale_version",
                "unknown_tag",
                "batch_closed",
                "batch_not_waiting",
                "deployment_in_progress",
            }, error.code
            event(f"switch refused: {error.code}")
            assert ReleaseApp.objects.get(pk=release.pk).image_tag == release.image_tag
            return
        event(f"switch changed={result.changed} from {before}")
        if result.changed:
            assert before in ("pre_waiting", "prod_waiting"), before
            assert result.batch_status == "pre_waiting"

    @precondition(lambda self: self.batch_ids)
    @rule(index=st.integers(0, 99), stage=st.sampled_from(["next", "next", "pre", "prod"]))
    def start_stage(self, index, stage):
        """Mostly the stage the batch waits for; sometimes the other one, to be refused."""
        batch = Batch.objects.get(pk=pick(self.batch_ids, index))
        if stage == "next":
            stage = "prod" if batch.status == BatchStatus.PROD_WAITING else "pre"
        start = start_prod_deploy if stage == "prod" else start_pre_deploy
        try:
            result = start(batch_id=batch.pk, user=self.user)
        except DomainError as error:
            assert error.code in {"invalid_transition", "batch_empty"}, error.code
            event(f"stage start refused: {error.code}")
        else:
            event(f"stage start changed={result.changed} -> {result.batch.status}")

    @precondition(lambda self: self.batch_ids)
    @rule(index=st.integers(0, 99), really=st.integers(0, 2))
    def cancel(self, index, really):
        # Rarer than the other actions: a cancelled batch takes no further part.
        if really:
            return
        batch = Batch.objects.get(pk=pick(self.batch_ids, index))
        try:
            cancel_batch(batch_id=batch.pk, user=self.user)
        except DomainError as error:
            assert error.code == "invalid_transition"
            assert batch.status == "completed"

    # --- what the reconciler does ---

    @precondition(lambda self: self.batch_ids)
    @rule(index=st.integers(0, 99))
    def launch(self, index):
        """A pending deployment of a deploying batch gets its Job."""
        deployment = pick(
            list(
                Deployment.objects.filter(
                    status=DeploymentStatus.PENDING,
                    job_name="",
                    release_app__batch__status__in=[
                        BatchStatus.PRE_DEPLOYING,
                        BatchStatus.PROD_DEPLOYING,
                    ],
                ).order_by("pk")
            ),
            index,
        )
        if deployment is not None:
            deployment_mark_running(
                deployment_id=deployment.pk,
                job_name=f"rt-deploy-{deployment.pk}",
                job_namespace=f"rt-{deployment.environment}",
            )

    @precondition(lambda self: self.batch_ids)
    @rule(index=st.integers(0, 99), succeeded=st.booleans())
    def finish(self, index, succeeded):
        """A Job ends, or the reconciler sees an old result again (which changes nothing)."""
        deployment = pick(list(Deployment.objects.exclude(job_name="").order_by("pk")), index)
        if deployment is None:
            return
        outcome = DeploymentStatus.SUCCEEDED if succeeded else DeploymentStatus.FAILED
        result = apply_deployment_outcome(
            deployment_id=deployment.pk, outcome=outcome, error="" if succeeded else "boom"
        )
        event(f"outcome {outcome} changed={result.changed} batch {result.batch.status}")
        if deployment.status != DeploymentStatus.RUNNING:
            assert not result.changed

    @precondition(lambda self: self.batch_ids)
    @rule(index=st.integers(0, 99), failures=st.sets(st.sampled_from(APPS)))
    def reconcile(self, index, failures):
        """One full reconciler pass over a batch: launch its pending deployments, then end
        every running one (the apps in `failures` fail)."""
        batch_id = pick(self.batch_ids, index)
        event("reconcile")
        deployments = Deployment.objects.filter(release_app__batch_id=batch_id)
        for deployment in deployments.filter(
            status=DeploymentStatus.PENDING,
            job_name="",
            release_app__batch__status__in=[BatchStatus.PRE_DEPLOYING, BatchStatus.PROD_DEPLOYING],
        ).order_by("pk"):
            deployment_mark_running(
                deployment_id=deployment.pk,
                job_name=f"rt-deploy-{deployment.pk}",
                job_namespace=f"rt-{deployment.environment}",
            )
        for deployment in deployments.filter(status=DeploymentStatus.RUNNING).select_related(
            "release_app__application"
        ):
            failed = deployment.release_app.application.name in failures
            apply_deployment_outcome(
                deployment_id=deployment.pk,
                outcome=DeploymentStatus.FAILED if failed else DeploymentStatus.SUCCEEDED,
                error="boom" if failed else "",
            )

    @invariant()
    def invariants_hold(self):
        assert invariants.violations() == []


def test_workflows_keep_their_invariants():
    run_state_machine_as_test(
        Workflows,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
