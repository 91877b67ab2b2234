"""The local executor: real subprocesses in their own process group, state kept in files."""

import os
import sys
import time

import pytest

from deployments.executors import JobState, PermanentJobError, get_executor
from deployments.executors.local import LocalExecutor
from deployments.models import Deployment
from releases.services import start_pre_deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(local_jobs, batch, user):
    start_pre_deploy(batch_id=batch.pk, user=user)
    deployment = Deployment.objects.select_related("release_app__application").get(
        release_app__application__name="api"
    )
    deployment.job_name, deployment.job_namespace = get_executor().job_target(deployment)
    return deployment


def _wait_finished(executor, deployment, *, rounds=400):
    """Poll until the Job ends (bounded); returns the last status."""
    status = executor.poll(deployment)
    for _ in range(rounds):
        if status.state != JobState.RUNNING:
            return status
        time.sleep(0.025)
        status = executor.poll(deployment)
    return status


def _set_command(deployment, *argv):
    deployment.config = {"command": [sys.executable, "-c", *argv]}


def test_runs_the_command_with_the_deployment_environment(deployment, local_jobs):
    executor = get_executor()
    executor.launch(deployment)

    assert _wait_finished(executor, deployment).state == JobState.SUCCEEDED
    output = (local_jobs / "release-train-pre" / deployment.job_name / "output.log").read_text()
    assert f"deploying api:v1 to pre (deployment {deployment.pk})" in output


def test_failure_reports_exit_status_and_the_tail_of_the_output(deployment):
    _set_command(deployment, "import sys; print('x' * 5000); print('boom'); sys.exit(3)")
    executor = get_executor()
    executor.launch(deployment)

    status = _wait_finished(executor, deployment)

    assert status.state == JobState.FAILED
    assert status.detail.startswith("exit status 3")
    assert status.detail.endswith("boom")
    assert len(status.detail) < 2100


def test_the_demo_script_fails_tags_that_say_so(deployment):
    deployment.image_tag = "v2-fail"
    executor = get_executor()
    executor.launch(deployment)

    status = _wait_finished(executor, deployment)

    assert status.state == JobState.FAILED
    assert "did not become healthy" in status.detail


def test_launch_twice_starts_one_process(deployment, local_jobs):
    _set_command(deployment, "import os; print(os.getpid())")
    executor = get_executor()
    executor.launch(deployment)
    executor.launch(deployment)
    _wait_finished(executor, deployment)

    output = (local_jobs / "release-train-pre" / deployment.job_name / "output.log").read_text()
    assert len(output.split()) == 1


def test_another_executor_instance_can_poll_what_one_launched(deployment):
    """A restarted reconciler still knows how its predecessor's Jobs ended."""
    _set_command(deployment, "pass")
    LocalExecutor().launch(deployment)

    assert _wait_finished(LocalExecutor(), deployment).state == JobState.SUCCEEDED


def test_cancel_kills_the_process_group(deployment, local_jobs):
    # The command starts a grandchild; both must go.
    _set_command(
        deployment,
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(p.pid, flush=True); time.sleep(60)",
    )
    executor = get_executor()
    executor.launch(deployment)
    log = local_jobs / "release-train-pre" / deployment.job_name / "output.log"
    for _ in range(400):
        if log.exists() and log.read_text().strip():
            break
        time.sleep(0.025)
    grandchild = int(log.read_text().split()[0])

    executor.cancel(deployment)
    executor.cancel(deployment)  # idempotent

    assert executor.poll(deployment).state == JobState.FAILED
    for _ in range(400):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.025)
    else:
        pytest.fail("the grandchild outlived the cancel")


def test_cancel_of_a_job_never_launched_is_a_no_op(deployment):
    get_executor().cancel(deployment)


def test_a_job_whose_state_is_gone_is_missing(deployment, local_jobs):
    executor = get_executor()
    assert executor.poll(deployment).state == JobState.MISSING


def test_an_unknown_program_is_a_permanent_error(deployment):
    deployment.config = {"command": ["no-such-program-anywhere"]}

    with pytest.raises(PermanentJobError, match="not an executable"):
        get_executor().launch(deployment)


def test_validate_accepts_the_defaults_and_names_a_bad_command(local_jobs, settings):
    from django.core.exceptions import ImproperlyConfigured

    get_executor().validate()
    settings.DEPLOY_LOCAL_COMMAND = ["/nonexistent/deploy"]
    with pytest.raises(ImproperlyConfigured, match="DEPLOY_LOCAL_COMMAND"):
        get_executor().validate()


def test_release_trains_own_secrets_stay_out_of_the_command(deployment, local_jobs, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s3cret")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db/rt")
    monkeypatch.setenv("BUILDS_WEBHOOK_SECRET", "hook")
    _set_command(
        deployment,
        "import os; print(sorted(k for k in os.environ if 'SECRET' in k or 'DATABASE' in k))",
    )
    executor = get_executor()
    executor.launch(deployment)
    _wait_finished(executor, deployment)

    output = (local_jobs / "release-train-pre" / deployment.job_name / "output.log").read_text()
    assert output.strip() == "[]"


def test_the_command_sees_an_allow_list_of_the_reconcilers_environment(
    deployment, local_jobs, monkeypatch, settings
):
    for name, value in {
        "PGPASSWORD": "pg-secret",
        "PGHOST": "db.internal",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "KUBECONFIG": "/root/.kube/config",
        "SOME_OTHER_TOKEN": "t",
        "TEAM_REGISTRY": "registry.example.com",
        "LANG": "C.UTF-8",
    }.items():
        monkeypatch.setenv(name, value)
    settings.DEPLOY_LOCAL_ENV_PASSTHROUGH = ["TEAM_REGISTRY"]
    _set_command(deployment, "import json, os; print(json.dumps(dict(os.environ)))")
    deployment.config["env"] = {"CHART": "api"}
    executor = get_executor()
    executor.launch(deployment)
    _wait_finished(executor, deployment)

    output = (local_jobs / "release-train-pre" / deployment.job_name / "output.log").read_text()
    import json

    seen = json.loads(output.strip().splitlines()[-1])
    assert not [k for k in seen if k.startswith(("PG", "AWS_")) or k == "KUBECONFIG"]
    assert "SOME_OTHER_TOKEN" not in seen
    assert seen["TEAM_REGISTRY"] == "registry.example.com"  # a configured extra
    assert seen["LANG"] == "C.UTF-8" and seen["PATH"] == os.environ["PATH"]
    assert seen["CHART"] == "api" and seen["APP_NAME"] == "api"  # the deployment's own
    # Python itself may add a few of its own (e.g. LC_CTYPE); nothing of the reconciler's.
    assert set(seen) - {"LC_CTYPE"} <= {
        "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TEAM_REGISTRY", "CHART",
        "APP_NAME", "IMAGE_TAG", "ENVIRONMENT", "DEPLOYMENT_ID",
    }  # fmt: skip
