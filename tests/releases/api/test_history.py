"""What the API changes is in the admin's History too: who switched, started, cancelled, created."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry

from releases.models import Batch
from tests.factories import UserFactory
from tests.helpers import ALL_PERMISSIONS, notify, token_client

pytestmark = pytest.mark.django_db


def history(obj) -> list[tuple[str, str]]:
    entries = LogEntry.objects.filter(
        content_type__model=obj._meta.model_name, object_id=str(obj.pk)
    ).order_by("pk")
    return [(e.user.username, e.change_message) for e in entries]


def test_create_switch_start_and_cancel_are_recorded_once_each():
    dana = UserFactory(username="dana", permissions=ALL_PERMISSIONS)
    client = token_client(dana)
    notify(1, {"api": "v1"})
    created = client.post(
        "/api/v1/batches/", {"name": "Nov", "apps": [{"name": "api"}]}, format="json"
    )
    batch = Batch.objects.get(pk=created.json()["batch"]["id"])
    notify(2, {"api": "v2"})
    release = batch.releases.get()

    for _ in range(2):  # a retried request changes nothing, and records nothing
        client.post(f"/api/v1/releases/{release.pk}/switch-version", {}, format="json")
        client.post(f"/api/v1/batches/{batch.pk}/start-pre-deploy", {}, format="json")
        client.post(f"/api/v1/batches/{batch.pk}/cancel", {}, format="json")

    new_pre = release.deployments.order_by("pk").first()
    assert history(release) == [
        (
            "dana",
            f"Switched api from v1 to v2. New pre deployment #{new_pre.pk} waits for the pre rollout.",
        )
    ]
    assert [message.split(".")[0] for _user, message in history(batch)] == [
        "Created the batch with api v1",
        "Switched api from v1 to v2",
        "Started the pre rollout",
        "Cancelled the batch",
    ]
    assert {user for user, _message in history(batch)} == {"dana"}
    assert LogEntry.objects.get(object_id=str(batch.pk), action_flag=ADDITION)
