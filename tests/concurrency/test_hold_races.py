"""A hold placed at the same moment as a stage start or a launch claim, forced both ways: either
the other one wins and the hold then stops its launches, or the hold wins and the start is
refused; never a launch under an active hold (lock order in releases/locks.py)."""

import threading

import pytest
from django.db import connection

import releases.services.batches as batches_module
import releases.services.holds as holds_module
from releases.models import Batch
from releases.reconciler import Reconciler
from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from releases.services.holds import hold_lift, hold_place
from tests.factories import UserFactory
from tests.helpers import notify
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batch(user):
    notify(1, {"api": "v1", "web": "w1"})
    return create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch


@pytest.fixture
def holder():
    return UserFactory(permissions=["applications.add_hold", "applications.lift_hold"])


def _in_thread(work, results: list, after: threading.Event | None = None):
    def run():
        try:
            if after is not None:
                after.wait(timeout=30)
            results.append(work())
        except Exception as exc:  # handed to the test
            results.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _launches(executor) -> list[int]:
    return [pk for op, pk, _name in executor.calls if op == "launch"]


def test_the_start_wins_then_the_hold_stops_its_launches(batch, user, holder, executor):
    """The start has checked the holds and not committed yet when the hold is placed."""
    checked = threading.Event()
    original = batches_module.holds_covering_stage

    def check_then_let_a_hold_in(**kwargs):
        found = list(original(**kwargs))
        checked.set()
        # With the holds lock the hold waits for this start to commit: do not wait for ever.
        placed.wait(timeout=1)
        return found

    placed_results: list = []
    placed = threading.Event()

    def place():
        try:
            return hold_place(user=holder, reason="incident 42")
        finally:
            placed.set()

    batches_module.holds_covering_stage = check_then_let_a_hold_in
    thread = _in_thread(place, placed_results, after=checked)
    try:
        result = start_pre_deploy(batch_id=batch.pk, user=user)
    finally:
        batches_module.holds_covering_stage = original
        thread.join(timeout=30)

    assert result.changed
    (hold_result,) = placed_results
    assert hold_result.changed
    Reconciler(name="r").tick()
    assert _launches(executor) == []  # the hold stops the stage it let start

    hold_lift(hold_id=hold_result.hold.pk, user=holder)
    Reconciler(name="r").tick()
    assert sorted(_launches(executor)) == sorted(d.pk for d in result.deployments)


def test_the_hold_wins_and_the_start_is_refused(batch, user, holder, executor):
    """The hold is written and not committed yet when the stage starts."""
    written, starting = threading.Event(), threading.Event()
    original = holds_module.reconcilers_wake

    def wake_after_a_start_came_in():
        written.set()
        # With the holds lock the start waits for this hold to commit.
        starting.wait(timeout=30)
        started.wait(timeout=1)
        original()

    start_results: list = []
    started = threading.Event()

    def start():
        starting.set()
        try:
            return start_pre_deploy(batch_id=batch.pk, user=user)
        finally:
            started.set()

    holds_module.reconcilers_wake = wake_after_a_start_came_in
    thread = _in_thread(start, start_results, after=written)
    try:
        hold_place(user=holder, reason="incident 42")
    finally:
        holds_module.reconcilers_wake = original
        thread.join(timeout=30)

    (refused,) = start_results
    assert isinstance(refused, DomainError), refused
    assert refused.code == "on_hold"
    assert Batch.objects.get(pk=batch.pk).status == "pre_waiting"


def test_a_launch_claim_waits_for_a_hold_being_placed_and_launches_nothing(
    batch, user, holder, executor
):
    """A reconciler looks for work while a hold is written and not committed yet."""
    start_pre_deploy(batch_id=batch.pk, user=user)
    written, claiming = threading.Event(), threading.Event()
    original = holds_module.reconcilers_wake

    def wake_after_a_claim_came_in():
        written.set()
        claiming.wait(timeout=30)
        ticked.wait(timeout=1)
        original()

    tick_results: list = []
    ticked = threading.Event()

    def tick():
        claiming.set()
        try:
            return Reconciler(name="r").tick()
        finally:
            ticked.set()

    holds_module.reconcilers_wake = wake_after_a_claim_came_in
    thread = _in_thread(tick, tick_results, after=written)
    try:
        hold_place(user=holder, reason="incident 42", environment="pre")
    finally:
        holds_module.reconcilers_wake = original
        thread.join(timeout=30)

    (tick_result,) = tick_results
    assert not isinstance(tick_result, Exception), tick_result
    assert _launches(executor) == []
