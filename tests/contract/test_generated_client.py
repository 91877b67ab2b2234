"""A Python client generated from /api/schema/ by openapi-python-client drives the main flow
against a live server: notify, create a batch, status, switch, start a stage, and typed errors.
Every response it receives is also checked against the schema (strict nullability)."""

import importlib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from tests.contract.checks import check_response
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "rt_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
def generated(live_server, tmp_path):
    """The client package, generated from the live server's schema (offline: no network)."""
    schema = tmp_path / "schema.json"
    schema.write_bytes(httpx.get(f"{live_server.url}/api/schema/?format=json").content)
    config = tmp_path / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    out = tmp_path / PACKAGE
    command = [GENERATOR, "generate", "--path", schema, "--output-path", out]
    subprocess.run(
        [*command, "--meta", "none", "--config", config],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _client(package, live_server, user):
    def checked(response: httpx.Response) -> None:
        response.read()
        check_response(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.headers.get("Content-Type", ""),
            response.content,
        )

    token = Token.objects.create(user=user).key
    return package.AuthenticatedClient(
        base_url=live_server.url,
        token=token,
        raise_on_unexpected_status=True,
        httpx_args={"event_hooks": {"response": [checked]}},
    )


def test_the_generated_client_drives_the_main_flow(generated, live_server):
    models = importlib.import_module(f"{PACKAGE}.models")

    def endpoint(tag: str, operation: str):
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")

    notify_op = endpoint("builds", "builds_notify")
    create_op = endpoint("batches", "batches_create")
    status_op = endpoint("releases", "releases_status_retrieve")
    switch_op = endpoint("releases", "releases_switch_version_create")
    start_pre_op = endpoint("batches", "batches_start_pre_deploy_create")
    cancel_op = endpoint("batches", "batches_cancel_create")
    releases_op = endpoint("releases", "releases_list")
    builds_op = endpoint("builds", "builds_list")
    batch_op = endpoint("batches", "batches_retrieve")
    deployments_op = endpoint("deployments", "deployments_list")

    drone = _client(generated, live_server, UserFactory(permissions=["builds.notify_build"]))
    alice_user = UserFactory(
        username="alice",
        permissions=[
            "releases.view_batch",
            "releases.view_releaseapp",
            "releases.add_batch",
            "applications.deploy_batch",
            "applications.switch_version",
            "deployments.view_deployment",
        ],
    )
    alice = _client(generated, live_server, alice_user)
    bob = _client(
        generated,
        live_server,
        UserFactory(permissions=["releases.view_releaseapp", "releases.view_batch"]),
    )

    def notify(number, apps):
        body = models.BuildNotificationRequest.from_dict(
            {
                "build_number": number,
                "build_status": "success",
                "apps": [{"name": n, "image_tag": t} for n, t in apps.items()],
                "repo": "org/shop",
            }
        )
        return notify_op.sync_detailed(client=drone, body=body)

    # Drone reports a build; a batch is made of its apps.
    assert notify(1, {"api": "v1", "web": "w1"}).status_code == 201
    created = create_op.sync_detailed(
        client=alice,
        body=models.BatchCreateRequest.from_dict(
            {"name": "Nov", "apps": [{"name": "api"}, {"name": "web", "image_tag": None}]}
        ),
    )
    assert created.status_code == 201
    batch = created.parsed.batch
    assert (batch.name, batch.created_by, batch.release_count) == ("Nov", "alice", 2)
    api_release = next(r for r in batch.releases if r.app == "api")
    assert isinstance(api_release.id, int) and api_release.tag_updated_by is None

    # A newer build: the release sees it, and alice may switch to it.
    notified = notify(2, {"api": "v2"})
    assert notified.parsed.new_tags[0].release_ids == [api_release.id]
    with_new_tag = releases_op.sync(client=alice, batch=batch.id, has_new_tag=True)
    assert [r.id for r in with_new_tag.results] == [api_release.id]
    status = status_op.sync(id=api_release.id, client=alice)
    assert (status.has_new_tag, status.can_switch, status.switch_blockers) == (True, True, [])
    assert status.tag_updated_by is None and status.latest_build_number == 2

    # Bob may look but not switch: a typed 403.
    refused = switch_op.sync_detailed(
        id=api_release.id, client=bob, body=models.SwitchVersionRequest()
    )
    assert refused.status_code == 403
    assert isinstance(refused.parsed, models.Error)
    assert refused.parsed.code == "permission_denied"

    # A tag no build produced: a typed 400.
    unknown = switch_op.sync_detailed(
        id=api_release.id, client=alice, body=models.SwitchVersionRequest(image_tag="v9")
    )
    assert unknown.status_code == 400
    assert (unknown.parsed.code, type(unknown.parsed)) == ("unknown_tag", models.Error)

    # Switch to the latest tag (image_tag null means "the latest"), then roll out pre.
    switched = switch_op.sync(
        id=api_release.id,
        client=alice,
        body=models.SwitchVersionRequest(image_tag=None, expected_image_tag="v1"),
    )
    assert (switched.changed, switched.previous_image_tag) == (True, "v1")
    assert (switched.release.image_tag, switched.release.tag_updated_by) == ("v2", "alice")
    started = start_pre_op.sync(id=batch.id, client=alice)
    assert started.changed and started.batch.status.value == "pre_deploying"
    assert {d.image_tag for d in started.deployments} == {"v2", "w1"}

    current = deployments_op.sync(client=alice, release=api_release.id, current=True)
    assert [(d.environment.value, d.status.value) for d in current.results] == [("pre", "pending")]
    cancelled = cancel_op.sync(id=batch.id, client=alice)
    assert (cancelled.changed, cancelled.batch.status.value) == (True, "cancelled")

    # Once alice's account is gone, what she made still reads, with null users.
    User.objects.filter(pk=alice_user.pk).delete()
    admin = _client(generated, live_server, UserFactory(is_superuser=True))
    assert [b.number for b in builds_op.sync(client=admin, app="api").results] == [2, 1]
    again = batch_op.sync(id=batch.id, client=admin)
    assert again.created_by is None
    assert all(r.tag_updated_by is None for r in again.releases)
    listed = deployments_op.sync(client=admin)
    assert listed.count >= 2 and all(d.created_by is None for d in listed.results)
