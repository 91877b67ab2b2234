"""New-tag detection from Drone's notifications (SPEC §4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import Application
from builds.models import Build, BuildImage
from builds.notifications import AppImage, BuildNotification
from releases.models import ReleaseApp
from releases.services import (
    cancel_batch,
    create_batch,
    ingest_build_notification,
    start_pre_deploy,
)
from releases.services.batches import AppChoice
from tests.helpers import notify

pytestmark = pytest.mark.django_db


def _release(batch, app="api") -> ReleaseApp:
    return ReleaseApp.objects.get(batch=batch, application__name=app)


def _batch(user, name="Nov", apps=("api",)):
    return create_batch(name=name, apps=[AppChoice(a) for a in apps], user=user).batch


def test_first_notification_records_build_images_and_registers_apps():
    result = notify(11, {"api": "v1.2.3", "web": "w7"})

    assert (result.created, result.duplicate, result.stale) == (True, False, False)
    build = Build.objects.get()
    assert (build.repo, build.number, build.status) == ("org/repo", 11, "success")
    assert set(BuildImage.objects.values_list("application__name", "image_tag")) == {
        ("api", "v1.2.3"),
        ("web", "w7"),
    }
    assert set(Application.objects.values_list("name", flat=True)) == {"api", "web"}


def test_every_status_is_recorded_but_only_success_detects(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)

    for number, status in enumerate(["failure", "error", "killed", "running", "pending"], 2):
        result = notify(number, {"api": f"v{number}"}, status=status)
        assert result.created and result.new_tags == []

    assert Build.objects.count() == 6
    assert _release(batch).latest_image_tag == "v1"


def test_success_marks_new_tag_in_every_open_batch_even_while_deploying(user, executor):
    notify(1, {"api": "v1", "web": "w1"})
    waiting = _batch(user, "waiting", ("api", "web"))
    deploying = _batch(user, "deploying", ("api",))
    start_pre_deploy(batch_id=deploying.pk, user=user)
    cancelled = _batch(user, "cancelled", ("api",))
    cancel_batch(batch_id=cancelled.pk, user=user)

    result = notify(2, {"api": "v2"})

    assert [(t.app, t.image_tag) for t in result.new_tags] == [("api", "v2")]
    assert sorted(result.new_tags[0].release_ids) == sorted(
        [_release(waiting).pk, _release(deploying).pk]
    )
    for batch in (waiting, deploying):
        release = _release(batch)
        assert (release.image_tag, release.latest_image_tag, release.has_new_tag) == (
            "v1",
            "v2",
            True,
        )
        assert release.latest_build.number == 2 and release.latest_seen_at is not None
    # A closed batch is history: it does not learn of new tags.
    assert _release(cancelled).latest_image_tag == "v1"
    # An app absent from the notification is untouched.
    assert _release(waiting, "web").has_new_tag is False


def test_duplicate_notification_changes_nothing(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)
    first = notify(2, {"api": "v2"})
    seen_at = _release(batch).latest_seen_at

    again = notify(2, {"api": "v2"})

    assert first.created and again.duplicate and not again.created
    assert again.new_tags == []
    assert _release(batch).latest_seen_at == seen_at
    assert Build.objects.filter(number=2).count() == 1


def test_a_resent_build_merges_apps_it_did_not_have_and_detects_their_new_tags(user):
    notify(1, {"api": "v1", "web": "w1"})
    batch = _batch(user, apps=("api", "web"))
    notify(2, {"api": "v2"})

    # A second pipeline of build 2, or its notify step re-run with the corrected apps.
    again = notify(2, {"api": "v2", "web": "w2", "worker": "k2"})

    assert not (again.created or again.duplicate or again.stale)
    assert [(t.app, t.image_tag) for t in again.new_tags] == [("web", "w2")]
    assert dict(
        BuildImage.objects.filter(build__number=2).values_list("application__name", "image_tag")
    ) == {"api": "v2", "web": "w2", "worker": "k2"}
    assert (_release(batch, "web").latest_image_tag, _release(batch, "web").has_new_tag) == (
        "w2",
        True,
    )
    assert _release(batch, "api").latest_image_tag == "v2"


def test_a_resent_unfinished_build_merges_apps_and_detects_them_once_it_succeeds(user):
    notify(1, {"api": "v1", "web": "w1"})
    batch = _batch(user, apps=("api", "web"))

    running = notify(2, {"web": "w2"}, status="running")
    merged = notify(2, {"api": "v2"}, status="running")
    success = notify(2, {}, status="success")

    assert running.new_tags == [] and merged.new_tags == [] and not merged.duplicate
    assert sorted((t.app, t.image_tag) for t in success.new_tags) == [("api", "v2"), ("web", "w2")]
    assert {r.latest_image_tag for r in batch.releases.all()} == {"v2", "w2"}


def test_a_resent_build_naming_a_recorded_app_at_another_tag_is_refused_whole(user):
    from utilities.errors import DomainError

    notify(1, {"api": "v1", "web": "w1"})
    batch = _batch(user, apps=("api", "web"))
    notify(2, {"api": "v2"})

    with pytest.raises(DomainError) as err:
        notify(2, {"api": "v3", "web": "w2", "newcomer": "n1"})

    assert err.value.code == "conflicting_image"
    assert err.value.status_code == 409
    assert BuildImage.objects.filter(build__number=2).count() == 1
    assert not Application.objects.filter(name="newcomer").exists()
    assert (_release(batch, "api").latest_image_tag, _release(batch, "web").latest_image_tag) == (
        "v2",
        "w1",
    )


def test_progressing_status_is_applied_and_detects_once(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)

    running = notify(2, {"api": "v2"}, status="running")
    success = notify(2, {"api": "v2"}, status="success")
    again = notify(2, {"api": "v2"}, status="success")

    assert running.created and running.new_tags == []
    assert not success.created and not success.stale and not success.duplicate
    assert [t.image_tag for t in success.new_tags] == ["v2"]
    assert again.duplicate and again.new_tags == []
    assert Build.objects.get(number=2).status == "success"
    assert _release(batch).has_new_tag


def test_final_status_never_regresses(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)
    notify(2, {"api": "v2"})

    late_running = notify(2, {"api": "v2"}, status="running")
    late_failure = notify(2, {"api": "v2"}, status="failure")

    assert late_running.stale and late_failure.stale
    assert Build.objects.get(number=2).status == "success"
    assert _release(batch).latest_image_tag == "v2"


def test_out_of_order_delivery_never_moves_latest_backwards(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)

    notify(5, {"api": "v5"})
    late = notify(3, {"api": "v3"})

    assert late.created and late.new_tags == []
    release = _release(batch)
    assert (release.latest_image_tag, release.latest_build.number) == ("v5", 5)


def test_an_app_whose_builds_move_to_another_repo_becomes_latest_again(user):
    notify(41, {"api": "v41"}, repo="org/shop")
    batch = _batch(user)

    moved = notify(1, {"api": "m1"}, repo="org/monorepo")  # a new pipeline numbers from 1

    assert [(t.app, t.image_tag) for t in moved.new_tags] == [("api", "m1")]
    release = _release(batch)
    assert (release.latest_image_tag, release.latest_build.repo) == ("m1", "org/monorepo")
    assert notify(2, {"api": "m2"}, repo="org/monorepo").new_tags
    assert _release(batch).latest_image_tag == "m2"


def test_a_late_build_of_the_old_repo_does_not_take_latest_back(user):
    notify(41, {"api": "v41"}, repo="org/shop")
    batch = _batch(user)
    notify(1, {"api": "m1"}, repo="org/monorepo")

    late = notify(40, {"api": "v40"}, repo="org/shop")  # delivered after the move, but older

    assert late.new_tags == []
    assert _release(batch).latest_image_tag == "m1"


def test_out_of_order_delivery_after_a_move_never_moves_latest_backwards(user):
    notify(1, {"api": "m1"}, repo="org/monorepo")
    batch = _batch(user)
    notify(5, {"api": "m5"}, repo="org/monorepo")

    assert notify(3, {"api": "m3"}, repo="org/monorepo").new_tags == []
    assert _release(batch).latest_image_tag == "m5"


def test_a_batch_starts_from_the_latest_build_across_repos(user):
    notify(41, {"api": "v41"}, repo="org/shop")
    notify(1, {"api": "m1"}, repo="org/monorepo")

    assert _release(_batch(user)).image_tag == "m1"


def test_new_tag_equal_to_chosen_tag_is_not_a_new_tag(user):
    notify(1, {"api": "v1"})
    batch = _batch(user)

    notify(2, {"api": "v1"})  # a rebuild of the same tag

    release = _release(batch)
    assert (release.latest_build.number, release.has_new_tag) == (2, False)


def test_invalid_notification_is_rejected_before_anything_is_written():
    from utilities.errors import DomainError

    with pytest.raises(DomainError) as err:
        notify(3, {"api": "not a tag!"})

    assert err.value.code == "invalid"
    assert "apps" in err.value.fields
    assert not Build.objects.exists() and not Application.objects.exists()


def test_a_failure_inside_the_transaction_writes_nothing(user, monkeypatch):
    notify(1, {"api": "v1"})
    _batch(user)

    def explode(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("releases.services.detection.new_tags_detect", explode)
    with pytest.raises(RuntimeError):
        notify(2, {"api": "v2", "brand-new": "b1"})

    # The build, its images and the auto-registered application all rolled back together.
    assert not Build.objects.filter(number=2).exists()
    assert not Application.objects.filter(name="brand-new").exists()


def _statements_to_ingest(user, app_count: int, prefix: str) -> int:
    # History: earlier builds, and three open batches holding every app.
    names = [f"{prefix}-{i}" for i in range(app_count)]
    for number in range(1, 4):
        notify(number, {n: f"v{number}" for n in names}, repo=prefix)
    for b in range(3):
        create_batch(name=f"{prefix}{b}", apps=[AppChoice(n) for n in names], user=user)
    notification = BuildNotification(
        number=10, status="success", apps=tuple(AppImage(n, "v10") for n in names), repo=prefix
    )
    with CaptureQueriesContext(connection) as queries:
        result = ingest_build_notification(notification=notification)
    assert sum(len(t.release_ids) for t in result.new_tags) == 3 * app_count
    return len(queries)


def test_statement_count_does_not_grow_with_apps_or_history(user):
    counts = {n: _statements_to_ingest(user, n, f"p{n}") for n in (1, 10, 200)}

    # Insert the build, lock its apps, write the images, and one statement that locks, updates
    # and reads the releases; one more that tells the live pages (bumps the batches' and the
    # apps' revisions, stamps the releases); 7 includes the savepoint pair the test's own
    # transaction adds.
    assert counts == {1: 7, 10: 7, 200: 7}


@pytest.mark.parametrize("seed", range(4))
def test_the_one_statement_detection_answers_as_the_portable_one(user, monkeypatch, seed):
    """PostgreSQL detects new tags in one statement; the demo's SQLite runs the same rule in ORM
    steps. The same deliveries (out of order, failed, re-sent, across a repo move) give the same
    new tags and leave every release at the same latest build either way."""
    import random

    from django.db import transaction

    from releases.services import detection

    notify(1, {"api": "v1", "web": "w1", "job": "j1"}, repo="org/old")
    for name, apps in (("one", ("api", "web")), ("two", ("api", "job")), ("three", ("web",))):
        _batch(user, name, apps)
    cancel_batch(batch_id=_batch(user, "closed", ("api",)).pk, user=user)
    rng = random.Random(seed)
    deliveries = [
        (repo, number, rng.choice(["success", "success", "failure"]), apps)
        for repo in ("org/old", "org/new")
        for number in range(2, 9)
        for apps in [{a: f"{a[0]}{repo[4]}{number}" for a in rng.sample(["api", "web", "job"], 2)}]
    ]
    rng.shuffle(deliveries)
    deliveries += rng.sample(deliveries, 4)  # re-sent

    def run() -> tuple[list, list]:
        answers = [
            [(t.app, t.image_tag, sorted(t.release_ids)) for t in notify(n, a, s, repo=r).new_tags]
            for r, n, s, a in deliveries
        ]
        releases = list(
            ReleaseApp.objects.order_by("pk").values_list(
                "pk", "latest_image_tag", "latest_build__repo", "latest_build__number"
            )
        )
        return answers, releases

    before = transaction.savepoint()  # not an atomic block: the ingest's own is durable
    in_one_statement = run()
    transaction.savepoint_rollback(before)
    monkeypatch.setattr(
        detection,
        "new_tags_detect",
        lambda *, build, application_ids: detection._new_tags_detect_portable(
            build=build, application_ids=sorted(application_ids)
        ),
    )
    step_by_step = run()

    assert in_one_statement == step_by_step
    assert any(in_one_statement[0])  # some delivery did detect new tags
