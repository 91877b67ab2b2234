"""Short ways to drive the real workflows from tests, and who may do what."""

import threading

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from builds.notifications import AppImage, BuildNotification
from builds.services import build_record
from deployments.choices import DeploymentStatus
from deployments.models import Deployment
from live.revisions import live_touch
from releases.services import apply_deployment_outcome, ingest_build_notification

# What a reader of every page and endpoint holds, and everything the API offers on top.
READ_PERMISSIONS = [
    "releases.view_batch",
    "releases.view_releaseapp",
    "applications.view_application",
    "builds.view_build",
    "deployments.view_deployment",
    "releases.view_hold",
]
ALL_PERMISSIONS = [
    *READ_PERMISSIONS,
    "applications.add_hold",
    "applications.lift_hold",
    "releases.add_batch",
    "applications.deploy_batch",
    "applications.switch_version",
    "builds.notify_build",
]


def token_client(user, keyword: str = "Bearer") -> APIClient:
    """An API client that sends `user`'s token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    return client


def notify(number: int, apps: dict[str, str], status: str = "success", repo: str = "org/repo"):
    """Ingest a notification of build `number` that produced `apps` ({name: tag})."""
    return ingest_build_notification(
        notification=BuildNotification(
            number=number,
            status=status,
            apps=tuple(AppImage(name, tag) for name, tag in apps.items()),
            repo=repo,
        )
    )


def record_unseen(
    number: int, apps: dict[str, str], status: str = "success", repo: str = "org/repo"
):
    """Record build `number` as its notification would, but without new-tag detection: a build
    no release learned of (a lost notification, a bug since fixed)."""
    with transaction.atomic():
        return build_record(
            notification=BuildNotification(
                number=number,
                status=status,
                apps=tuple(AppImage(name, tag) for name, tag in apps.items()),
                repo=repo,
            )
        ).build


def nov_batch(user, *, new_tag: bool = False, repo: str = "org/repo"):
    """Batch "Nov" waiting for pre: api at v1 and web at w1 (build 1), created by `user`; with
    `new_tag`, build 2 has since made api v2, a new tag for its release."""
    from releases.services import create_batch
    from releases.services.batches import AppChoice

    notify(1, {"api": "v1", "web": "w1"}, repo=repo)
    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    if new_tag:
        notify(2, {"api": "v2"}, repo=repo)
    return batch


def run_deployment(deployment: Deployment, outcome: str = "succeeded", error: str = ""):
    """What the reconciler does for one deployment: its Job starts, then ends with `outcome`."""
    deployment_mark_running(
        deployment_id=deployment.pk,
        job_name=f"rt-deploy-{deployment.pk}",
        job_namespace=f"rt-{deployment.environment}",
    )
    return apply_deployment_outcome(deployment_id=deployment.pk, outcome=outcome, error=error)


def run_stage(result, outcomes: dict[str, str] | None = None):
    """Finish every deployment a stage start queued; `outcomes` maps app name to outcome."""
    outcomes = outcomes or {}
    last = None
    for deployment in result.deployments:
        app = deployment.release_app.application.name
        last = run_deployment(deployment, outcomes.get(app, "succeeded"))
    return last


def race(*calls) -> list:
    """Run the calls at the same moment, each in its own thread and database connection.

    Returns each call's result, or the exception it raised. Fails if a thread hangs (deadlock).
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # handed to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    return results


def old_deployments(release, count: int, *, environments=("prod",), statuses=("succeeded",)):
    """`count` finished, superseded deployments of `release` (history a page must not pay for),
    cycling through `environments` and `statuses`."""
    Deployment.objects.bulk_create(
        Deployment(
            release_app=release,
            application_id=release.application_id,
            environment=environments[i % len(environments)],
            image_tag="v1",
            status=statuses[i % len(statuses)],
            started_at="2026-01-01T00:00Z",
            finished_at="2026-01-01T00:00Z",
            superseded_at="2026-01-01T00:00Z",
        )
        for i in range(count)
    )


def deployment_mark_running(*, deployment_id: int, job_name: str, job_namespace: str) -> str:
    """Record that one deployment's Job exists; returns the deployment's status after it.

    `cancelled` means it was cancelled while its Job was being created: the Job is to be
    deleted. `running` may also mean a reconciler recorded it first. The reconciler records
    its launches in bulk (`deployments_mark_running`); tests set one deployment running with
    this, where no reconciler claimed it.
    """
    with transaction.atomic(durable=True):
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        if deployment.status == DeploymentStatus.PENDING:
            deployment.job_name = job_name
            deployment.job_namespace = job_namespace
            deployment.start(at=timezone.now())
            deployment.save(update_fields=["job_name", "job_namespace", "status", "started_at"])
            live_touch(deployment_ids=[deployment.pk])
    return deployment.status


def group_member(group: str, codename: str, *permissions: str):
    """A user holding `permissions` of their own and, through `group`, `codename`: (user, group)."""
    from django.contrib.auth.models import Group, Permission

    from tests.factories import UserFactory

    found = Group.objects.create(name=group)
    found.permissions.add(Permission.objects.get(codename=codename))
    user = UserFactory(permissions=list(permissions))
    user.groups.add(found)
    return user, found
