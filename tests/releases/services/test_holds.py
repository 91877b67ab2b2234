"""Holds stop the line (SPEC §13): each shape of hold against stage start, switch and cancel."""

import datetime
from datetime import timedelta

import pytest
from django.utils import timezone

from releases.models import Batch, Hold, ReleaseApp
from releases.services import cancel_batch, create_batch, start_pre_deploy, start_prod_deploy
from releases.services.batches import AppChoice
from releases.services.holds import hold_lift, hold_place
from releases.services.switch import switch_version
from tests.factories import ApplicationFactory, UserFactory
from tests.helpers import notify, run_stage
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db

HOLDER = ["applications.add_hold", "applications.lift_hold"]


@pytest.fixture
def holder():
    return UserFactory(username="bob", permissions=HOLDER)


@pytest.fixture
def batch(user):
    """Batch "Nov" of api and web waiting for pre; api has a newer tag to switch to."""
    notify(1, {"api": "v1", "web": "w1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    notify(2, {"api": "v2"})
    return batch


def _hold(shape: str, batch: Batch, holder) -> Hold:
    now = timezone.now()
    if shape == "expired":
        # Ended an hour ago: the database keeps history a request could not place.
        return Hold.objects.create(
            reason="old incident",
            created_by=holder,
            created_at=now - timedelta(hours=3),
            starts_at=now - timedelta(hours=2),
            ends_at=now - timedelta(hours=1),
        )
    fields = {
        "everything": {},
        "prod only": {"environment": "prod"},
        "one app": {"application": "api"},
        "another app": {"application": ApplicationFactory(name="billing").name},
        "one batch": {"batch_id": batch.pk},
        "future window": {
            "starts_at": now + timedelta(days=1),
            "ends_at": now + timedelta(days=2),
        },
    }[shape]
    return hold_place(user=holder, reason="incident 42", **fields).hold


def _api(batch) -> ReleaseApp:
    return batch.releases.get(application__name="api")


@pytest.mark.parametrize(
    ("shape", "refused"),
    [
        ("everything", True),
        ("prod only", False),
        ("one app", True),
        ("another app", False),
        ("one batch", True),
        ("future window", False),
        ("expired", False),
    ],
)
def test_a_pre_start_is_refused_while_a_hold_covers_one_of_its_deployments(
    batch, user, holder, shape, refused
):
    _hold(shape, batch, holder)

    if refused:
        with pytest.raises(DomainError) as error:
            start_pre_deploy(batch_id=batch.pk, user=user)
        assert error.value.code == "on_hold"
        assert error.value.status_code == 409
        assert "incident 42 (bob)" in error.value.detail
        batch.refresh_from_db()
        assert batch.status == "pre_waiting"
        assert not batch.releases.filter(deployments__isnull=False).exists()
    else:
        assert start_pre_deploy(batch_id=batch.pk, user=user).changed


def test_a_prod_hold_refuses_the_prod_start_and_says_until_when(batch, user, holder):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    ends = timezone.now().replace(microsecond=0) + timedelta(days=3)
    hold_place(user=holder, reason="holiday freeze", environment="prod", ends_at=ends)

    with pytest.raises(DomainError) as error:
        start_prod_deploy(batch_id=batch.pk, user=user)

    until = ends.astimezone(datetime.UTC)
    assert error.value.detail == (
        f"Prod is on hold until {until:%Y-%m-%d %H:%M} UTC: holiday freeze (bob)."
    )


@pytest.mark.parametrize(
    ("shape", "refused"),
    [
        # Preparing the next version is safe; deploying it is what a hold stops.
        ("everything", False),
        ("prod only", False),
        ("one app", True),
        ("another app", False),
        ("one batch", True),
        ("future window", False),
        ("expired", False),
    ],
)
def test_a_switch_is_refused_only_by_a_hold_naming_its_application_or_batch(
    batch, user, holder, shape, refused
):
    _hold(shape, batch, holder)

    if refused:
        with pytest.raises(DomainError) as error:
            switch_version(release_id=_api(batch).pk, user=user)
        assert error.value.code == "on_hold"
        assert _api(batch).image_tag == "v1"
    else:
        assert switch_version(release_id=_api(batch).pk, user=user).changed


@pytest.mark.parametrize(
    "shape",
    ["everything", "prod only", "one app", "another app", "one batch", "future window", "expired"],
)
def test_cancelling_is_never_held(batch, user, holder, shape):
    start_pre_deploy(batch_id=batch.pk, user=user)
    _hold(shape, batch, holder)

    assert cancel_batch(batch_id=batch.pk, user=user).changed
    assert Batch.objects.get(pk=batch.pk).status == "cancelled"


def test_the_switch_checks_6a_after_6_and_before_7(batch, user, holder):
    start_pre_deploy(batch_id=batch.pk, user=user)
    hold_place(user=holder, reason="incident 42", application="api")

    # Deploying: check 6 answers first.
    with pytest.raises(DomainError) as error:
        switch_version(release_id=_api(batch).pk, user=user)
    assert error.value.code == "batch_not_waiting"


def test_lifting_lets_the_stage_start_and_is_idempotent(batch, user, holder):
    hold = hold_place(user=holder, reason="incident 42").hold

    first = hold_lift(hold_id=hold.pk, user=holder, note="  resolved  ")
    again = hold_lift(hold_id=hold.pk, user=holder)

    assert (first.changed, again.changed) == (True, False)
    assert (first.hold.lifted_by, first.hold.lift_note) == (holder, "resolved")
    assert start_pre_deploy(batch_id=batch.pk, user=user).changed


def test_placing_the_same_hold_again_finds_it(holder):
    first = hold_place(user=holder, reason="incident 42", environment="prod")
    again = hold_place(user=holder, reason="incident 42", environment="prod")

    assert (first.changed, again.changed) == (True, False)
    assert again.hold.pk == first.hold.pk
    assert Hold.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"reason": "  "}, "invalid_hold", "reason"),
        ({"reason": "x" * 501}, "invalid_hold", "reason"),
        ({"environment": "staging"}, "invalid_hold", "environment"),
        ({"application": "nope"}, "unknown_app", "application"),
        ({"application": "api", "batch_id": "BATCH"}, "invalid_hold", "batch"),
        ({"batch_id": 999_999}, "unknown_batch", "batch"),
        ({"ends_at": "PAST"}, "invalid_hold", "ends_at"),
        ({"starts_at": "TOMORROW", "ends_at": "NOW+1H"}, "invalid_hold", "ends_at"),
    ],
)
def test_a_bad_hold_is_refused_and_nothing_is_written(batch, holder, kwargs, code, field):
    now = timezone.now()
    values = {
        "BATCH": batch.pk,
        "PAST": now - timedelta(minutes=1),
        "TOMORROW": now + timedelta(days=1),
        "NOW+1H": now + timedelta(hours=1),
    }
    kwargs = {"reason": "incident", **{k: values.get(v, v) for k, v in kwargs.items()}}

    with pytest.raises(DomainError) as error:
        hold_place(user=holder, **kwargs)

    assert (error.value.code, list(error.value.fields)) == (code, [field])
    assert not Hold.objects.exists()


def test_a_hold_on_a_closed_batch_is_refused(batch, user, holder):
    cancel_batch(batch_id=batch.pk, user=user)

    with pytest.raises(DomainError) as error:
        hold_place(user=holder, reason="incident", batch_id=batch.pk)

    assert error.value.code == "batch_closed"
    assert not Hold.objects.exists()


def test_placing_and_lifting_need_the_permissions_named(batch, user):
    nobody = UserFactory()
    with pytest.raises(DomainError) as error:
        hold_place(user=nobody, reason="incident", application="api")
    assert error.value.code == "permission_denied"
    assert error.value.detail == "You need the add_hold permission for api."

    with pytest.raises(DomainError) as error:
        hold_place(user=nobody, reason="incident")
    assert error.value.detail == "You need the add_hold permission."

    hold = hold_place(user=UserFactory(permissions=HOLDER), reason="incident").hold
    with pytest.raises(DomainError) as error:
        hold_lift(hold_id=hold.pk, user=nobody)
    assert error.value.detail == "You need the lift_hold permission."
    assert Hold.objects.active().count() == 1


def test_active_and_covering_are_one_vocabulary(batch, holder):
    now = timezone.now()
    api = _api(batch)
    prod_api = hold_place(user=holder, reason="a", environment="prod", application="api").hold
    planned = hold_place(
        user=holder,
        reason="b",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
    ).hold

    def covering(at, environment):
        return set(
            Hold.objects.active(at=at).covering(
                environment=environment, application=api.application_id, batch=batch.pk
            )
        )

    assert covering(now + timedelta(seconds=1), "prod") == {prod_api}
    assert covering(now + timedelta(seconds=1), "pre") == set()
    assert covering(now + timedelta(minutes=90), "pre") == {planned}
    assert Hold.objects.next_change(at=now + timedelta(seconds=1)) == planned.starts_at
    assert Hold.objects.next_change(at=now + timedelta(minutes=90)) == planned.ends_at
