"""What changes a batch is in its history, with who, when and why: the admin log, read by the
API's `GET /api/v1/batches/{id}/history` and the admin's History pages, in the reader's language."""

import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.pagination import PageNumberPagination

from deployments.models import Deployment
from releases import services
from releases.history import SYSTEM_USERNAME
from releases.models import Batch
from tests.factories import UserFactory
from tests.helpers import (
    ALL_PERMISSIONS,
    READ_PERMISSIONS,
    notify,
    run_deployment,
    run_stage,
    token_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana():
    return UserFactory(username="dana", permissions=ALL_PERMISSIONS)


@pytest.fixture
def client(dana):
    return token_client(dana)


@pytest.fixture
def batch(client) -> Batch:
    """A batch of api v1 and web w1, whose apps then built v2 and w2."""
    notify(1, {"api": "v1", "web": "w1"})
    created = client.post(
        "/api/v1/batches/",
        {"name": "Nov", "apps": [{"name": "api"}, {"name": "web"}]},
        format="json",
    )
    notify(2, {"api": "v2", "web": "w2"})
    return Batch.objects.get(pk=created.json()["batch"]["id"])


def release(batch, app):
    return batch.releases.get(application__name=app)


def history(client, batch, **headers) -> list[dict]:
    answer = client.get(f"/api/v1/batches/{batch.pk}/history", **headers)
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def start_pre(client, batch, body=None):
    return client.post(f"/api/v1/batches/{batch.pk}/start-pre-deploy", body or {}, format="json")


def test_create_switch_start_and_cancel_are_recorded_once_each(client, batch):
    api = release(batch, "api")
    for _ in range(2):  # a retried request changes nothing, and records nothing
        client.post(f"/api/v1/releases/{api.pk}/switch-version", {}, format="json")
        start_pre(client, batch)
        client.post(f"/api/v1/batches/{batch.pk}/cancel", {}, format="json")

    new_pre = api.deployments.order_by("pk").first()
    entries = history(client, batch)
    assert [(e["user"], e["action"], e["message"]) for e in entries] == [
        ("dana", "batch_cancelled", "Cancelled the batch and its 2 unfinished deployments."),
        ("dana", "stage_started", "Started the pre rollout: 2 deployments queued."),
        (
            "dana",
            "version_switched",
            f"Switched api from v1 to v2; new pre deployment #{new_pre.pk} waits for the pre "
            "rollout.",
        ),
        ("dana", "batch_created", "Created the batch with 2 applications: api v1, web w1."),
    ]
    # The switch is the release's; the admin's batch History shows its copy too.
    assert entries[2]["object"] == {"type": "release", "id": api.pk, "repr": "api @ v2"}
    assert entries[0]["object"] == {"type": "batch", "id": batch.pk, "repr": "Nov"}
    assert LogEntry.objects.get(object_id=str(batch.pk), action_flag=ADDITION)


def test_entries_are_stored_language_neutral(client, batch):
    start_pre(client, batch, {"note": "Payments signed off."})

    stored = json.loads(LogEntry.objects.latest("pk").change_message)
    assert stored == {
        "action": "stage_started",
        "params": {"stage": "pre", "count": 2},
        "note": "Payments signed off.",
    }


def test_messages_render_in_the_readers_language_with_plurals(client, batch):
    api = release(batch, "api")
    client.post(f"/api/v1/releases/{api.pk}/switch-version", {}, format="json")
    start_pre(client, batch)
    # one of two fails: the outcome names it, singular
    for deployment in Deployment.objects.filter(release_app__batch=batch, environment="pre"):
        run_deployment(deployment, "failed" if deployment.release_app_id == api.pk else "succeeded")

    chinese = [e["message"] for e in history(client, batch, HTTP_ACCEPT_LANGUAGE="zh-hans")]
    english = [e["message"] for e in history(client, batch, HTTP_ACCEPT_LANGUAGE="en")]

    assert english[0] == "The pre stage failed: 1 release failed (api)."
    assert english[1] == "Started the pre rollout: 2 deployments queued."
    assert chinese[0] == "预发布阶段失败：1 个发布项失败（api）。"  # noqa: RUF001
    assert chinese[1] == "已开始预发布部署：已排队 2 个部署。"  # noqa: RUF001
    assert chinese[3] == "已创建批次，包含 2 个应用：api v1、web w1。"  # noqa: RUF001
    assert all("(s)" not in message for message in english)


def test_stage_outcomes_are_recorded_by_release_train(client, batch):
    run_stage(_start(batch, "pre"))
    run_stage(_start(batch, "prod"))

    entries = history(client, batch)
    assert [(e["user"], e["action"], e["message"]) for e in entries[:4]] == [
        (SYSTEM_USERNAME, "batch_completed", "The prod stage finished: the batch is completed."),
        ("dana", "stage_started", "Started the prod rollout: 2 deployments queued."),
        (SYSTEM_USERNAME, "stage_finished", "The pre stage finished: every release passed pre."),
        ("dana", "stage_started", "Started the pre rollout: 2 deployments queued."),
    ]
    system = UserFactory._meta.model.objects.get(username=SYSTEM_USERNAME)
    assert not system.is_active and not system.has_usable_password()


def _start(batch, stage):
    user = UserFactory._meta.model.objects.get(username="dana")
    service = services.start_pre_deploy if stage == "pre" else services.start_prod_deploy
    return service(batch_id=batch.pk, user=user)


def test_history_is_paginated_newest_first(client, batch, monkeypatch):
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    start_pre(client, batch)
    client.post(f"/api/v1/batches/{batch.pk}/cancel", {}, format="json")

    first = client.get(f"/api/v1/batches/{batch.pk}/history").json()
    second = client.get(f"/api/v1/batches/{batch.pk}/history", {"page": 2}).json()

    assert first["count"] == 3
    assert [e["action"] for e in first["results"]] == ["batch_cancelled", "stage_started"]
    assert [e["action"] for e in second["results"]] == ["batch_created"]
    ats = [e["at"] for e in first["results"] + second["results"]]
    assert ats == sorted(ats, reverse=True)


def test_history_takes_the_same_number_of_queries_for_5_and_50_entries(client, batch):
    def queries_for(total: int) -> int:
        _entries(batch, total - LogEntry.objects.count())
        with CaptureQueriesContext(connection) as captured:
            assert len(history(client, batch)) == min(total, 50)
        return len(captured)

    assert queries_for(5) == queries_for(50)


def _entries(batch, count):
    """`count` more switches recorded on the batch's releases (the log is all the page reads)."""
    user = UserFactory._meta.model.objects.get(username="dana")
    api = release(batch, "api")
    LogEntry.objects.bulk_create(
        LogEntry(
            user=user,
            content_type=ContentType.objects.get_for_model(api),
            object_id=str(api.pk),
            object_repr=str(api),
            action_flag=CHANGE,
            change_message=json.dumps(
                {
                    "action": "version_switched",
                    "params": {"app": "api", "from": f"v{i}", "to": f"v{i + 1}", "deployment": i},
                    "note": f"try {i}",
                }
            ),
        )
        for i in range(count)
    )


def test_entries_written_before_in_english_are_recognised(client, batch):
    api = release(batch, "api")
    LogEntry.objects.all().delete()
    user = UserFactory._meta.model.objects.get(username="dana")
    old = [
        (batch, "Created the batch with api v1, web w1."),
        (api, "Switched api from v1 to v2. New pre deployment #9 waits for the pre rollout."),
        (batch, "Switched api from v1 to v2. New pre deployment #9 waits for the pre rollout."),
        (
            batch,
            "Started the pre rollout. 3 deployment(s) queued. The batch is now deploying to pre.",
        ),
        (
            batch,
            "Cancelled the batch. 1 unfinished deployment(s) cancelled. The batch is now cancelled.",
        ),
        (batch, "Something an operator wrote by hand."),
    ]
    for obj, message in old:
        LogEntry.objects.create(
            user=user,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            object_repr=str(obj),
            action_flag=CHANGE,
            change_message=message,
        )

    english = history(client, batch)
    chinese = history(client, batch, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert [e["message"] for e in english] == [
        "Something an operator wrote by hand.",
        "Cancelled the batch and its 1 unfinished deployment.",
        "Started the pre rollout: 3 deployments queued.",
        "Switched api from v1 to v2; new pre deployment #9 waits for the pre rollout.",
        "Created the batch with 2 applications: api v1, web w1.",
    ]
    assert [e["action"] for e in chinese] == [
        "other",
        "batch_cancelled",
        "stage_started",
        "version_switched",
        "batch_created",
    ]
    assert chinese[0]["message"] == "Something an operator wrote by hand."
    assert chinese[2]["message"] == "已开始预发布部署：已排队 3 个部署。"  # noqa: RUF001


def test_history_needs_the_batch_view_permission(client_with, batch):
    assert client_with().get(f"/api/v1/batches/{batch.pk}/history").status_code == 403
    reader = client_with(*READ_PERMISSIONS)
    assert reader.get(f"/api/v1/batches/{batch.pk}/history").status_code == 200
    assert reader.get("/api/v1/batches/999999/history").status_code == 404


# Notes ------------------------------------------------------------------------------------

NOTE = "  Fixes the checkout timeout (INC-481).  "


@pytest.mark.parametrize("action", ["switch", "start_pre", "start_prod", "cancel"])
def test_a_note_is_stored_returned_and_in_the_history(client, batch, action, caplog):
    url = _action_url(batch, action)
    answer = client.post(url, {"note": NOTE}, format="json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["note"] == NOTE.strip()
    assert history(client, batch)[0]["note"] == NOTE.strip()
    assert any(getattr(r, "note", None) == NOTE.strip() for r in caplog.records)


@pytest.mark.parametrize("action", ["switch", "start_pre", "start_prod", "cancel"])
@pytest.mark.parametrize("note", ["x" * 501, "two\nlines", "bell\u0007", "\u2028", 5, ["a list"]])
def test_a_bad_note_is_refused_and_nothing_is_written(client, batch, action, note):
    url = _action_url(batch, action)
    entries = LogEntry.objects.count()
    batch.refresh_from_db()
    status = batch.status

    answer = client.post(url, {"note": note}, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid"
    assert list(answer.json()["fields"]) == ["note"]
    assert LogEntry.objects.count() == entries
    batch.refresh_from_db()
    assert batch.status == status
    assert release(batch, "api").image_tag == "v1"


def test_a_note_of_500_characters_after_trimming_is_taken(client, batch):
    answer = start_pre(client, batch, {"note": "  " + "n" * 500 + " "})
    assert answer.status_code == 200, answer.content
    assert answer.json()["note"] == "n" * 500


def test_without_a_note_the_note_is_empty(client, batch):
    assert start_pre(client, batch).json()["note"] == ""
    assert history(client, batch)[0]["note"] == ""


def _action_url(batch, action) -> str:
    if action == "start_prod":
        run_stage(_start(batch, "pre"))
    if action == "switch":
        return f"/api/v1/releases/{release(batch, 'api').pk}/switch-version"
    return {
        "start_pre": f"/api/v1/batches/{batch.pk}/start-pre-deploy",
        "start_prod": f"/api/v1/batches/{batch.pk}/start-prod-deploy",
        "cancel": f"/api/v1/batches/{batch.pk}/cancel",
    }[action]
