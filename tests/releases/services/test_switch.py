"""Switching a release's version (SPEC §5): every check, in order, and every effect."""

import pytest
from django.db import connection, transaction

from deployments.models import Deployment
from releases.choices import BatchStatus
from releases.models import Batch, ReleaseApp
from releases.services import (
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.factories import DeploymentFactory, UserFactory
from tests.fakes import RecordingExecutor
from tests.helpers import deployment_mark_running, notify, nov_batch, run_stage
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(user, executor) -> ReleaseApp:
    """api at v1 in a waiting batch, with v2 built since."""
    batch = nov_batch(user, new_tag=True)
    return batch.releases.get(application__name="api")


def _fresh(release) -> ReleaseApp:
    return ReleaseApp.objects.select_related("batch").get(pk=release.pk)


def _snapshot(release):
    r = _fresh(release)
    return (
        r.image_tag,
        r.status,
        r.batch.status,
        list(Deployment.objects.order_by("pk").values_list("pk", "status", "superseded_at")),
    )


def _rejected(code, release, **kwargs):
    before = _snapshot(release)
    kwargs.setdefault("user", UserFactory(username="alice"))
    with pytest.raises(DomainError) as err:
        switch_version(release_id=release.pk, **kwargs)
    assert err.value.code == code
    assert _snapshot(release) == before, "a refused switch must change nothing"
    return err.value


# --- the checks, in order -------------------------------------------------------------------


def test_1_without_permission_is_forbidden(release):
    error = _rejected("permission_denied", release, user=UserFactory(username="bob"))
    assert error.status_code == 403


def test_1_permission_through_a_group_is_enough(release):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="release-engineers")
    group.permissions.add(Permission.objects.get(codename="switch_version"))
    carol = UserFactory(username="carol")
    carol.groups.add(group)

    assert switch_version(release_id=release.pk, user=carol).changed


def test_1_comes_before_everything_else(release):
    # A stale precondition and an unknown tag, but the missing permission answers first.
    _rejected(
        "permission_denied",
        release,
        user=UserFactory(username="bob"),
        image_tag="nope",
        expected_image_tag="v0",
    )


def test_2_switch_to_the_current_tag_is_a_successful_no_op(release, user):
    result = switch_version(release_id=release.pk, user=user, image_tag="v1")
    assert (result.changed, result.deployment, result.previous_image_tag) == (False, None, "v1")


def test_2_a_retried_switch_with_its_expected_tag_is_a_successful_no_op(release, user):
    # The first answer was lost; the client sends the very same request again.
    first = switch_version(
        release_id=release.pk, user=user, image_tag="v2", expected_image_tag="v1"
    )

    retry = switch_version(
        release_id=release.pk, user=user, image_tag="v2", expected_image_tag="v1"
    )

    assert first.changed and not retry.changed
    assert (retry.release.image_tag, retry.previous_image_tag) == ("v2", "v2")


def test_2_a_retried_switch_succeeds_whatever_the_batch_does_now(release, user):
    first = switch_version(release_id=release.pk, user=user, expected_image_tag="v1")
    start_pre_deploy(batch_id=release.batch_id, user=user)

    retry = switch_version(
        release_id=release.pk, user=user, image_tag="v2", expected_image_tag="v1"
    )

    assert first.changed and not retry.changed
    assert retry.batch_status == BatchStatus.PRE_DEPLOYING


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_2_no_op_answers_even_in_a_closed_batch(release, user, status):
    Batch.objects.filter(pk=release.batch_id).update(status=status)
    assert not switch_version(release_id=release.pk, user=user, image_tag="v1").changed


def test_2_no_known_target_is_a_no_op(user, executor):
    notify(1, {"solo": "s1"})
    batch = create_batch(name="solo", apps=[AppChoice("solo")], user=user).batch
    release = batch.releases.get()
    ReleaseApp.objects.filter(pk=release.pk).update(latest_image_tag="", latest_build=None)

    assert switch_version(release_id=release.pk, user=user).changed is False


def test_3_stale_expected_tag_is_a_conflict(release):
    error = _rejected("stale_version", release, expected_image_tag="v0")
    assert error.status_code == 409


def test_3_stale_comes_before_unknown_tag(release):
    _rejected("stale_version", release, image_tag="v9", expected_image_tag="v0")


def test_4_unknown_tag_is_a_bad_request(release):
    error = _rejected("unknown_tag", release, image_tag="v9")
    assert error.status_code == 400


def test_4_a_tag_of_a_failed_build_or_another_app_is_unknown(release):
    notify(3, {"api": "v3"}, status="failure")
    _rejected("unknown_tag", release, image_tag="v3")
    _rejected("unknown_tag", release, image_tag="w1")


def test_4_unknown_tag_answers_before_batch_status(release):
    Batch.objects.filter(pk=release.batch_id).update(status="completed")
    _rejected("unknown_tag", release, image_tag="v9")


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_5_a_closed_batch_says_it_can_no_longer_change(release, status):
    Batch.objects.filter(pk=release.batch_id).update(status=status)
    # Even with a Job in flight: a closed batch is the first thing to know.
    DeploymentFactory(release_app=release, status="running", job_name="j")

    error = _rejected("batch_closed", release)

    assert error.status_code == 409
    assert error.detail == f"The batch is {status}; it can no longer change."


@pytest.mark.parametrize(
    ("status", "human"),
    [("pre_deploying", "deploying to pre"), ("prod_deploying", "deploying to prod")],
)
def test_6_only_a_waiting_batch_allows_a_switch(release, status, human):
    Batch.objects.filter(pk=release.batch_id).update(status=status)
    error = _rejected("batch_not_waiting", release)
    assert error.status_code == 409
    assert f"The batch is {human};" in error.detail and status not in error.detail


def test_6_unknown_tag_answers_before_batch_status(release):
    Batch.objects.filter(pk=release.batch_id).update(status="pre_deploying")
    _rejected("unknown_tag", release, image_tag="v9")


@pytest.mark.parametrize(
    ("status", "job_name"), [("running", "rt-deploy-1"), ("pending", "rt-deploy-1")]
)
def test_7_a_deployment_in_progress_blocks(release, status, job_name):
    # A waiting batch cannot normally hold one; any of the release's rows counts, current or not.
    DeploymentFactory(
        release_app=release,
        status=status,
        job_name=job_name,
        superseded_at="2026-01-01T00:00Z",
    )
    error = _rejected("deployment_in_progress", release)
    assert error.status_code == 409


def test_7_a_pending_deployment_without_job_does_not_block(release, user):
    DeploymentFactory(release_app=release)
    assert switch_version(release_id=release.pk, user=user).changed


# --- the effects ----------------------------------------------------------------------------


def test_switch_in_pre_waiting_updates_tag_and_queues_a_pre_deployment(release, user):
    result = switch_version(release_id=release.pk, user=user)

    fresh = _fresh(release)
    assert result.changed and result.previous_image_tag == "v1"
    assert (fresh.image_tag, fresh.build.number, fresh.status) == ("v2", 2, "pending")
    assert (fresh.tag_updated_by, fresh.has_new_tag) == (user, False)
    assert fresh.tag_updated_at is not None
    assert (result.deployment.environment, result.deployment.image_tag) == ("pre", "v2")
    assert result.deployment.status == "pending"
    assert result.batch_status == BatchStatus.PRE_WAITING


def test_switch_after_pre_supersedes_and_takes_the_current_config_and_reopens_pre(release, user):
    release.application.deploy_config = {"pre": {"namespace": "typo-pre"}}
    release.application.save()
    run_stage(start_pre_deploy(batch_id=release.batch_id, user=user))
    old = Deployment.objects.get(release_app=release, environment="pre")
    # The config is fixed after the old deployment ran: the new one must run with the fix.
    release.application.deploy_config = {"pre": {"namespace": "shop-pre"}}
    release.application.save()
    assert _fresh(release).batch.status == BatchStatus.PROD_WAITING

    result = switch_version(release_id=release.pk, user=user)

    old.refresh_from_db()
    assert result.batch_status == BatchStatus.PRE_WAITING == _fresh(release).batch.status
    assert result.superseded_deployment_ids == [old.pk]
    # The old deployment succeeded and stays succeeded; superseding is a separate fact.
    assert (old.status, old.superseded_by_id) == ("succeeded", result.deployment.pk)
    assert old.superseded_at is not None and old.cleanup_pending
    assert old.config == {"namespace": "typo-pre"}
    assert result.deployment.config == {"namespace": "shop-pre"}
    # The new deployment waits for the next stage start: nothing was launched.
    assert result.deployment.status == "pending" and not result.deployment.job_name


def test_switch_only_touches_its_own_release(release, user):
    web = ReleaseApp.objects.get(batch=release.batch, application__name="web")
    before = (web.image_tag, web.status)

    switch_version(release_id=release.pk, user=user)

    web.refresh_from_db()
    assert (web.image_tag, web.status) == before


def test_switch_back_and_forth_keeps_the_chain_as_history(release, user):
    first = switch_version(release_id=release.pk, user=user, image_tag="v2")
    second = switch_version(release_id=release.pk, user=user, image_tag="v1")

    assert second.superseded_deployment_ids == [first.deployment.pk]
    assert Deployment.objects.filter(release_app=release).count() == 2
    assert Deployment.objects.filter(release_app=release).current().get() == second.deployment
    assert _fresh(release).has_new_tag  # latest is still v2


def test_unknown_release_is_not_found(user):
    with pytest.raises(DomainError) as err:
        switch_version(release_id=999999, user=user)
    assert err.value.code == "not_found" and err.value.status_code == 404


# --- Job deletion happens after commit, and only then ----------------------------------------


def _release_after_pre(release, user) -> Deployment:
    pre = start_pre_deploy(batch_id=release.batch_id, user=user)
    run_stage(pre)
    return Deployment.objects.get(
        release_app=release, application_id=release.application_id, environment="pre"
    )


def test_job_is_deleted_after_commit_not_before(release, user, django_capture_on_commit_callbacks):
    old = _release_after_pre(release, user)

    with django_capture_on_commit_callbacks() as callbacks:
        switch_version(release_id=release.pk, user=user)
        assert RecordingExecutor.cancelled_ids() == []  # still inside the transaction

    for callback in callbacks:
        callback()
    assert RecordingExecutor.cancelled_ids() == [old.pk]
    old.refresh_from_db()
    assert old.cleanup_pending is False


def test_a_failed_job_deletion_never_undoes_the_switch(
    release, user, django_capture_on_commit_callbacks
):
    old = _release_after_pre(release, user)
    RecordingExecutor.fail_cancel = True

    with django_capture_on_commit_callbacks(execute=True):
        result = switch_version(release_id=release.pk, user=user)

    old.refresh_from_db()
    assert result.changed and _fresh(release).image_tag == "v2"
    assert RecordingExecutor.cancelled_ids() == [old.pk]
    # Left for the reconciler to retry.
    assert old.cleanup_pending is True


@pytest.mark.django_db(transaction=True)
def test_no_job_deletion_when_the_switch_rolls_back_at_commit(executor):
    user = UserFactory(username="alice", permissions=["applications.switch_version"])
    notify(1, {"api": "v1"})
    notify(2, {"api": "v2"})
    notify(3, {"api": "poison"})
    release = create_batch(
        name="Nov", apps=[AppChoice("api", "v1")], user=user
    ).batch.releases.get()
    old = DeploymentFactory(release_app=release, status="succeeded", job_name="rt-1")
    # A deferred constraint that fails at COMMIT: the switch's work is done, its Job deletion
    # registered, and then the database refuses the transaction.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.image_tag = 'poison' THEN RAISE EXCEPTION 'poisoned tag'; END IF;
              RETURN NEW;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_poison AFTER UPDATE ON releases_releaseapp
              DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison();
            """
        )
    try:
        ok = switch_version(release_id=release.pk, user=user, image_tag="v2")
        assert ok.changed and RecordingExecutor.cancelled_ids() == [old.pk]
        RecordingExecutor.reset()

        with pytest.raises(Exception, match="poisoned tag"):
            switch_version(release_id=release.pk, user=user, image_tag="poison")

        assert RecordingExecutor.cancelled_ids() == []
        assert ReleaseApp.objects.get(pk=release.pk).image_tag == "v2"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER refuse_poison ON releases_releaseapp; DROP FUNCTION refuse_poison();"
            )
    assert transaction.get_autocommit()


def test_switch_refused_while_the_release_deploys_even_if_the_batch_waits(release, user):
    start = start_pre_deploy(batch_id=release.batch_id, user=user)
    deployment = start.deployments[0]
    deployment_mark_running(deployment_id=deployment.pk, job_name="rt-x", job_namespace="ns")
    # Force the inconsistent state the spec still guards against: batch waiting, Job running.
    Batch.objects.filter(pk=release.batch_id).update(status="pre_waiting")

    _rejected("deployment_in_progress", release)


def test_full_prod_cycle_then_switch_supersedes_both_environments(release, user):
    run_stage(start_pre_deploy(batch_id=release.batch_id, user=user))
    run_stage(start_prod_deploy(batch_id=release.batch_id, user=user), {"api": "failed"})

    result = switch_version(release_id=release.pk, user=user)

    envs = Deployment.objects.filter(pk__in=result.superseded_deployment_ids).values_list(
        "environment", flat=True
    )
    assert sorted(envs) == ["pre", "prod"]
    assert list(
        Deployment.objects.filter(release_app=release)
        .current()
        .values_list("environment", "image_tag")
    ) == [("pre", "v2")]


def test_job_deletions_in_the_request_stop_at_their_time_budget(
    release, user, settings, django_capture_on_commit_callbacks
):
    old = _release_after_pre(release, user)
    settings.DEPLOY_CLEANUP_BUDGET_SECONDS = 0

    with django_capture_on_commit_callbacks(execute=True):
        result = switch_version(release_id=release.pk, user=user)

    old.refresh_from_db()
    # The switch is done; the Job is left for the reconciler instead of holding the response.
    assert result.changed and RecordingExecutor.cancelled_ids() == []
    assert old.cleanup_pending is True


def test_a_job_cleanup_that_fails_outright_after_commit_never_fails_the_switch(
    release, user, settings, django_capture_on_commit_callbacks
):
    old = _release_after_pre(release, user)
    settings.DEPLOY_EXECUTOR = "tests.fakes.NoSuchExecutor"  # a misconfigured web process

    with django_capture_on_commit_callbacks(execute=True):
        result = switch_version(release_id=release.pk, user=user)

    old.refresh_from_db()
    assert result.changed and _fresh(release).image_tag == "v2"
    assert old.cleanup_pending is True  # the reconciler deletes it


def test_a_bulk_switch_spends_one_time_budget_for_the_whole_request(
    client, settings, executor, user, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from tests.pages import staff

    apps = ["api", "web", "db"]
    notify(1, {a: f"{a}-1" for a in apps})
    batch = create_batch(name="Nov", apps=[AppChoice(a) for a in apps], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    notify(2, {a: f"{a}-2" for a in apps})
    settings.DEPLOY_CLEANUP_BUDGET_SECONDS = 0.2
    RecordingExecutor.cancel_seconds = 0.3  # each deletion alone outlasts the budget
    client.force_login(staff("switcher", "applications.switch_version"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:releases_releaseapp_changelist"),
            {
                "action": "switch_to_latest",
                "_selected_action": list(batch.releases.values_list("pk", flat=True)),
            },
        )

    assert response.status_code == 302
    assert set(batch.releases.values_list("image_tag", flat=True)) == {"api-2", "web-2", "db-2"}
    # One deletion started within the request's budget; the reconciler deletes the others.
    assert len(RecordingExecutor.cancelled_ids()) == 1
    assert Deployment.objects.filter(cleanup_pending=True).count() == 2
