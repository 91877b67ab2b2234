"""The holds API (SPEC §13) and the holds that batch, release and status responses list."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from releases.models import Hold
from releases.services import create_batch
from releases.services.batches import AppChoice
from releases.services.holds import hold_place
from tests.factories import UserFactory
from tests.helpers import ALL_PERMISSIONS, notify, token_client

pytestmark = pytest.mark.django_db

HOLDER = [*ALL_PERMISSIONS, "releases.view_hold", "applications.add_hold", "applications.lift_hold"]


@pytest.fixture
def holder_api():
    return token_client(UserFactory(username="alice", permissions=HOLDER))


@pytest.fixture
def batch(user):
    notify(1, {"api": "v1", "web": "w1"})
    return create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch


def test_placing_a_hold_answers_201_with_it(holder_api):
    ends = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    response = holder_api.post(
        "/api/v1/holds/",
        {"reason": "holiday freeze", "environment": "prod", "ends_at": ends.isoformat()},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["changed"] is True
    hold = body["hold"]
    assert {k: hold[k] for k in ("reason", "environment", "application", "batch", "active")} == {
        "reason": "holiday freeze",
        "environment": "prod",
        "application": None,
        "batch": None,
        "active": True,
    }
    assert (hold["created_by"], hold["lifted_at"], hold["lift_note"]) == ("alice", None, "")


def test_a_hold_of_an_application_and_a_batch_is_400_and_nothing_is_written(holder_api, batch):
    response = holder_api.post(
        "/api/v1/holds/", {"reason": "x", "application": "api", "batch": batch.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "batch": ["A hold names an application or a batch, not both."]
    }
    assert not Hold.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"reason": ""}, 400, "invalid"),
        ({"reason": "x", "environment": "staging"}, 400, "invalid"),
        ({"reason": "x", "application": "nope"}, 400, "unknown_app"),
        ({"reason": "x", "batch": 999999}, 400, "unknown_batch"),
        ({"reason": "x", "ends_at": "2020-01-01T00:00:00Z"}, 400, "invalid_hold"),
    ],
)
def test_bad_holds_are_refused(holder_api, body, status, code):
    response = holder_api.post("/api/v1/holds/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not Hold.objects.exists()


def test_placing_needs_add_hold_naming_the_app(client_with, batch):
    response = client_with("releases.view_hold").post(
        "/api/v1/holds/", {"reason": "x", "application": "api"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["detail"] == "You need the add_hold permission for api."


def test_lifting_answers_changed_then_not(holder_api):
    placed = holder_api.post("/api/v1/holds/", {"reason": "incident"}, format="json").json()
    url = f"/api/v1/holds/{placed['hold']['id']}/lift"

    first = holder_api.post(url, {"note": "fixed"}, format="json")
    again = holder_api.post(url, {}, format="json")

    assert first.status_code == again.status_code == 200
    assert (first.json()["changed"], again.json()["changed"]) == (True, False)
    assert first.json()["hold"]["lift_note"] == "fixed"
    assert first.json()["hold"]["lifted_by"] == "alice"
    assert first.json()["hold"]["active"] is False


def test_holds_are_listed_and_filtered(holder_api, batch):
    holder = UserFactory(permissions=HOLDER)
    on_api = hold_place(user=holder, reason="a", application="api").hold
    on_batch = hold_place(user=holder, reason="b", batch_id=batch.pk, environment="pre").hold
    planned = hold_place(
        user=holder,
        reason="c",
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=2),
    ).hold

    def ids(query: str) -> set[int]:
        response = holder_api.get(f"/api/v1/holds/{query}")
        assert response.status_code == 200
        return {h["id"] for h in response.json()["results"]}

    assert ids("") == {on_api.pk, on_batch.pk, planned.pk}
    assert ids("?active=true") == {on_api.pk, on_batch.pk}
    assert ids("?active=false") == {planned.pk}
    assert ids("?application=api") == {on_api.pk}
    assert ids(f"?batch={batch.pk}") == {on_batch.pk}
    assert ids("?environment=pre") == {on_batch.pk}
    assert holder_api.get(f"/api/v1/holds/{on_api.pk}/").json()["reason"] == "a"
    assert holder_api.get("/api/v1/holds/?active=maybe").status_code == 400


def test_a_stage_start_under_a_hold_is_409_on_hold(holder_api, batch):
    holder_api.post("/api/v1/holds/", {"reason": "incident 42"}, format="json")

    response = holder_api.post(f"/api/v1/batches/{batch.pk}/start-pre-deploy")

    assert response.status_code == 409
    assert response.json()["code"] == "on_hold"
    assert response.json()["detail"] == "Everything is on hold until lifted: incident 42 (alice)."


def test_batch_release_and_status_responses_list_the_holds_covering_them(holder_api, batch):
    holder = UserFactory(permissions=HOLDER)
    on_api = hold_place(user=holder, reason="a", application="api").hold
    on_other = hold_place(user=holder, reason="b", application=_other_app()).hold
    api = batch.releases.get(application__name="api")
    web = batch.releases.get(application__name="web")

    detail = holder_api.get(f"/api/v1/batches/{batch.pk}/").json()
    listed = holder_api.get("/api/v1/batches/").json()["results"][0]
    status = holder_api.get(f"/api/v1/releases/{api.pk}/status").json()

    assert [h["id"] for h in detail["holds"]] == [on_api.pk]
    assert [h["id"] for h in listed["holds"]] == [on_api.pk]
    releases = {r["app"]: [h["id"] for h in r["holds"]] for r in detail["releases"]}
    assert releases == {"api": [on_api.pk], "web": []}
    assert [h["id"] for h in status["holds"]] == [on_api.pk]
    assert status["can_switch"] is False
    assert status["switch_blockers"][0]["code"] == "on_hold"
    assert holder_api.get(f"/api/v1/releases/{web.pk}/").json()["holds"] == []
    assert on_other.pk not in {h["id"] for h in detail["holds"]}


def _other_app() -> str:
    notify(2, {"billing": "b1"})
    return "billing"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/batches/",
        "/api/v1/batches/{batch}/",
        "/api/v1/releases/",
        "/api/v1/releases/{api}/status",
    ],
)
def test_query_counts_do_not_grow_with_the_holds(holder_api, batch, url):
    holder = UserFactory(permissions=HOLDER)
    api = batch.releases.get(application__name="api")
    url = url.format(batch=batch.pk, api=api.pk)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert holder_api.get(url).status_code == 200
        return len(queries)

    hold_place(user=holder, reason="first", application="api")
    with_one = count()
    for i in range(5):
        hold_place(user=holder, reason=f"more {i}", application="web")
        hold_place(user=holder, reason=f"batch {i}", batch_id=batch.pk)
        hold_place(user=holder, reason=f"all {i}", environment="prod")

    assert count() == with_one


def test_the_active_holds_gauge_and_the_on_hold_rejections_are_scraped(holder_api, batch, client):
    from prometheus_client import REGISTRY

    def rejected() -> float:
        labels = {"environment": "pre", "code": "on_hold"}
        return REGISTRY.get_sample_value("releasetrain_stage_rejections_total", labels) or 0

    before = rejected()
    holder = UserFactory(permissions=HOLDER)
    hold_place(user=holder, reason="a")
    hold_place(user=holder, reason="b", application="api")
    lifted = hold_place(user=holder, reason="c", environment="pre").hold
    holder_api.post(f"/api/v1/holds/{lifted.pk}/lift", {}, format="json")
    holder_api.post(f"/api/v1/batches/{batch.pk}/start-pre-deploy")

    body = client.get("/metrics").content.decode()

    assert "\nreleasetrain_holds_active 2.0\n" in body
    assert rejected() == before + 1


def test_a_hold_placed_and_lifted_is_in_the_history_of_the_batches_it_stops(executor):
    from releases.services.holds import hold_lift, hold_place
    from tests.helpers import ALL_PERMISSIONS, nov_batch, token_client

    alice = UserFactory(username="alice", permissions=ALL_PERMISSIONS)
    batch = nov_batch(alice)
    placed = hold_place(user=alice, reason="incident", environment="prod", application="api").hold
    hold_lift(hold_id=placed.pk, user=alice, note="fixed")

    entries = token_client(alice).get(f"/api/v1/batches/{batch.pk}/history").json()["results"]

    assert [(e["action"], e["message"], e["note"]) for e in entries[:2]] == [
        ("hold_lifted", f"Lifted hold #{placed.pk}: prod api.", "fixed"),
        ("hold_placed", f"Placed hold #{placed.pk}: prod api.", ""),
    ]
