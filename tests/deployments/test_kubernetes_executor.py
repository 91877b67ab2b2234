"""The Kubernetes executor, through the real client over HTTP against a fake API server."""

import re
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from kubernetes import client

from applications.models import Application
from deployments.executors import JobState, PermanentJobError, get_executor
from deployments.executors.kubernetes import job_status
from deployments.models import Deployment
from releases.models import ReleaseApp
from releases.services import start_pre_deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(batch, user):
    """The pre deployment of `api`, with its Job name recorded as the reconciler does."""
    start_pre_deploy(batch_id=batch.pk, user=user)
    deployment = Deployment.objects.select_related("release_app__application").get(
        release_app__application__name="api"
    )
    name, namespace = get_executor().job_target(deployment)
    Deployment.objects.filter(pk=deployment.pk).update(job_name=name, job_namespace=namespace)
    deployment.refresh_from_db()
    return deployment


def test_job_spec_carries_the_deployment(cluster, deployment):
    get_executor().launch(deployment)

    [(namespace, name)] = cluster.created()
    assert (namespace, name) == ("release-train-pre", f"rt-api-{deployment.pk}")
    job = cluster.jobs[(namespace, name)]
    labels = {
        "app.kubernetes.io/name": "api",
        "app.kubernetes.io/managed-by": "release-train",
        "release-train.io/environment": "pre",
        "release-train.io/deployment-id": str(deployment.pk),
    }
    assert job["metadata"]["labels"] == labels
    assert job["metadata"]["annotations"] == {"release-train.io/image-tag": "v1"}
    assert "generateName" not in job["metadata"]
    spec = job["spec"]
    assert (
        spec["backoffLimit"],
        spec["activeDeadlineSeconds"],
        spec["ttlSecondsAfterFinished"],
    ) == (
        0,
        1800,
        7 * 24 * 3600,
    )
    assert spec["template"]["metadata"]["labels"] == labels
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/api:v1"
    assert container["command"] == ["/deploy", "--wait"]
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "APP_NAME": "api",
        "IMAGE_TAG": "v1",
        "ENVIRONMENT": "pre",
        "DEPLOYMENT_ID": str(deployment.pk),
    }


def test_deploy_config_overrides_namespace_image_command_and_adds_env(
    cluster, deployment, settings
):
    settings.DEPLOY_ALLOWED_NAMESPACES = ["team-*"]
    settings.DEPLOY_ALLOWED_IMAGES = ["deployer:*"]
    Deployment.objects.filter(pk=deployment.pk).update(
        config={
            "namespace": "team-api",
            "image": "deployer:2",
            "command": ["helm", "upgrade"],
            "env": {"CHART": "api", "IMAGE_TAG": "ignored"},
        }
    )
    deployment.refresh_from_db()
    executor = get_executor()
    deployment.job_name, deployment.job_namespace = executor.job_target(deployment)

    executor.launch(deployment)

    job = cluster.jobs[("team-api", deployment.job_name)]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["command"]) == ("deployer:2", ["helm", "upgrade"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["CHART"] == "api"
    assert env["IMAGE_TAG"] == "v1"  # the deployment's own variables cannot be overridden


def test_create_of_an_existing_job_counts_as_launched(cluster, deployment):
    executor = get_executor()
    executor.launch(deployment)
    executor.launch(deployment)

    assert cluster.count("create", 201) == 1
    assert cluster.count("create", 409) == 1
    assert len(cluster.jobs) == 1


def test_a_same_named_job_of_another_deployment_is_not_taken_for_ours(cluster, deployment):
    executor = get_executor()
    executor.launch(deployment)
    cluster.jobs[(deployment.job_namespace, deployment.job_name)]["metadata"]["labels"][
        "release-train.io/deployment-id"
    ] = "999999"

    with pytest.raises(PermanentJobError, match="belongs to deployment '999999'"):
        executor.launch(deployment)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_a_refused_create_is_permanent(cluster, deployment, status):
    cluster.inject("create", status=status)

    with pytest.raises(PermanentJobError, match=f"refused Job .*{status}"):
        get_executor().launch(deployment)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_on_create_is_transient(cluster, deployment, status):
    cluster.inject("create", status=status)

    with pytest.raises(client.ApiException) as err:
        get_executor().launch(deployment)

    assert err.value.status == status
    assert not isinstance(err.value, PermanentJobError)
    assert cluster.jobs == {}


def test_delete_sends_background_propagation_and_404_counts_as_done(cluster, deployment):
    executor = get_executor()
    executor.launch(deployment)

    executor.cancel(deployment)
    executor.cancel(deployment)

    deletes = [r for r in cluster.requests if r.op == "delete"]
    assert [r.status for r in deletes] == [200, 404]
    for request in deletes:
        assert request.query["propagationPolicy"] == ["Background"]
        assert request.body["propagationPolicy"] == "Background"
    assert cluster.jobs == {}


def test_delete_errors_other_than_404_are_raised(cluster, deployment):
    cluster.inject("delete", status=500)

    with pytest.raises(client.ApiException):
        get_executor().cancel(deployment)


def test_poll_maps_conditions_and_a_vanished_job(cluster, deployment):
    executor = get_executor()
    executor.launch(deployment)
    key = (deployment.job_namespace, deployment.job_name)

    assert executor.poll(deployment).state == JobState.RUNNING

    cluster.finish(*key, succeeded=False, message="pod exited 2")
    failed = executor.poll(deployment)
    assert failed.state == JobState.FAILED
    assert "BackoffLimitExceeded" in failed.detail and "pod exited 2" in failed.detail

    cluster.finish(*key, succeeded=True)
    assert executor.poll(deployment).state == JobState.SUCCEEDED

    # Read from the Job itself: the RBAC Role grants `jobs`, not the `jobs/status` subresource.
    assert {r.path for r in cluster.requests if r.op == "read"} == {
        f"/apis/batch/v1/namespaces/{key[0]}/jobs/{key[1]}"
    }

    cluster.vanish(*key)
    missing = executor.poll(deployment)
    assert missing.state == JobState.MISSING
    assert deployment.job_name in missing.detail and "disappeared" in missing.detail


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        (None, JobState.RUNNING),
        ([], JobState.RUNNING),
        ([{"type": "Suspended", "status": "True"}], JobState.RUNNING),
        ([{"type": "Complete", "status": "False"}], JobState.RUNNING),
        ([{"type": "FailureTarget", "status": "True"}], JobState.RUNNING),
        ([{"type": "SuccessCriteriaMet", "status": "True"}], JobState.RUNNING),
        (
            [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
            JobState.SUCCEEDED,
        ),
        ([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}], JobState.FAILED),
    ],
)
def test_finished_means_a_true_complete_or_failed_condition(conditions, state):
    job = client.V1Job.from_dict({"status": {"conditions": conditions}})

    assert job_status(job).state == state


def test_poll_timeout_raises_without_changing_anything(cluster, deployment):
    executor = get_executor()
    executor.launch(deployment)
    cluster.inject("read", delay=3.0)

    with pytest.raises(Exception):  # noqa: B017 - urllib3's timeout, whatever its wrapper
        executor.poll(deployment)

    assert executor.poll(deployment).state == JobState.RUNNING


@pytest.mark.parametrize("app", ["api", "Billing_Service.v2", "a" * 63, "x" + "-" * 61 + "y"])
def test_job_names_are_dns_1123_labels_of_at_most_63_characters(cluster, app):
    release = ReleaseApp(application=Application(name=app))
    deployment = Deployment(pk=1234567890123, environment="pre", release_app=release)

    name, namespace = get_executor().job_target(deployment)

    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert name.endswith("-1234567890123")
    assert namespace == "release-train-pre"
    assert get_executor().job_target(deployment) == (name, namespace)


def test_validate_names_the_missing_setting(cluster, settings):
    get_executor().validate()

    settings.DEPLOY_JOB_IMAGE = ""
    with pytest.raises(ImproperlyConfigured, match="DEPLOY_JOB_IMAGE is required"):
        get_executor().validate()

    settings.DEPLOY_JOB_IMAGE = "x"
    settings.DEPLOY_RECONCILER_LEASE_SECONDS = 1
    with pytest.raises(ImproperlyConfigured, match="LEASE_SECONDS must be at least 3 x"):
        get_executor().validate()

    settings.DEPLOY_RECONCILER_LEASE_SECONDS = 120
    settings.DEPLOY_NAMESPACES = {"pre": "Not_Valid", "prod": "p"}
    with pytest.raises(ImproperlyConfigured, match="DEPLOY_NAMESPACE_PRE='Not_Valid'"):
        get_executor().validate()


def test_validate_explains_a_missing_kubeconfig(cluster, settings, tmp_path):
    settings.DEPLOY_KUBECONFIG = str(tmp_path / "nowhere")

    with pytest.raises(ImproperlyConfigured, match="no usable kubeconfig"):
        get_executor().validate()


def test_inside_a_pod_the_service_account_is_used(settings, tmp_path, monkeypatch):
    """In-cluster configuration: the API address from the environment Kubernetes gives every
    pod, the token and CA from the mounted service account (here, files we write)."""
    from kubernetes.config import incluster_config

    from deployments.executors.kubernetes import KubernetesExecutor

    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    settings.DEPLOY_KUBECONFIG = str(tmp_path / "not-read")

    configuration = KubernetesExecutor()._load_configuration()

    assert configuration.host == "https://10.0.0.1:443"
    assert configuration.auth_settings()["BearerToken"]["value"] == "bearer pod-token"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")
    assert configuration.retries == 0


def _managed_jobs(cluster, namespace: str, count: int) -> None:
    for i in range(count):
        body = {
            "metadata": {
                "name": f"rt-{i:03d}",
                "labels": {"app.kubernetes.io/managed-by": "release-train"},
            },
            "spec": {},
        }
        cluster.handle("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", {}, body)


def _following(executor) -> threading.Event:
    stop = threading.Event()
    executor.watch(on_change=lambda: None, stop=stop)
    deadline = time.monotonic() + 30
    while not executor.synced() and time.monotonic() < deadline:
        time.sleep(0.01)
    return stop


def test_the_informer_lists_jobs_page_by_page(cluster, settings):
    settings.DEPLOY_KUBERNETES_LIST_PAGE_SIZE = 10
    namespace = settings.DEPLOY_NAMESPACES["pre"]
    _managed_jobs(cluster, namespace, 25)
    executor = get_executor()

    stop = _following(executor)
    stop.set()

    assert len([key for key in executor.existing_jobs() if key[0] == namespace]) == 25
    pages = [r for r in cluster.requests if r.op == "list" and r.namespace == namespace]
    assert [r.query.get("limit") for r in pages] == [["10"]] * 3
    assert [bool(r.query.get("continue")) for r in pages] == [False, True, True]


def test_an_expired_continue_starts_the_list_again(cluster, settings):
    settings.DEPLOY_KUBERNETES_LIST_PAGE_SIZE = 10
    namespace = settings.DEPLOY_NAMESPACES["pre"]
    _managed_jobs(cluster, namespace, 25)
    expired = []

    def compact_once(query):
        # Between the first and the second page a Job changes and the server compacts its
        # history past the first page's version, once.
        if query.get("continue") and not expired:
            expired.append(True)
            cluster.finish(namespace, "rt-000")
            cluster.expire_history()

    cluster.before_list = compact_once
    executor = get_executor()

    stop = _following(executor)
    stop.set()

    assert len([key for key in executor.existing_jobs() if key[0] == namespace]) == 25
    assert cluster.count("list", 410) == 1
    assert executor._informer(namespace).get((namespace, "rt-000")).state == JobState.SUCCEEDED
