"""Real threads, real transactions, real row locks on PostgreSQL."""

import threading
from collections import Counter

import pytest
from django.db import connection

from deployments.models import Deployment
from releases.choices import BatchStatus
from releases.errors import DomainError
from releases.models import Batch, ReleaseApp
from releases.services import create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify

pytestmark = pytest.mark.django_db(transaction=True)


def _race(*calls) -> list:
    """Run the calls at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # collected and asserted on by the test
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


@pytest.fixture
def user():
    return UserFactory(
        username="alice", permissions=["releases.switch_version", "releases.deploy_batch"]
    )


def test_sixteen_identical_switches_make_one_change(user, executor):
    notify(1, {"api": "v1"})
    release = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch.releases.get()
    notify(2, {"api": "v2"})

    results = _race(
        *[lambda: switch_version(release_id=release.pk, user=user, image_tag="v2")] * 16
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Counter(r.changed for r in results) == {True: 1, False: 15}
    assert ReleaseApp.objects.get(pk=release.pk).image_tag == "v2"
    assert Deployment.objects.filter(release_app=release, environment="pre").current().count() == 1


def test_a_switch_never_lands_in_a_deploying_batch(user, executor):
    notify(1, {"api": "v1", "web": "w1"})
    notify(2, {"api": "v2", "web": "w2"})
    for round_ in range(12):
        batch = create_batch(
            name=f"race {round_}", apps=[AppChoice("api", "v1"), AppChoice("web", "w1")], user=user
        ).batch
        api, web = batch.releases.order_by("application__name")

        results = _race(
            lambda b=batch: start_pre_deploy(batch_id=b.pk, user=user),
            lambda r=api: switch_version(release_id=r.pk, user=user),
            lambda r=web: switch_version(release_id=r.pk, user=user, expected_image_tag="w1"),
        )

        unexpected = [
            r
            for r in results
            if isinstance(r, Exception)
            and not (isinstance(r, DomainError) and r.code == "batch_not_waiting")
        ]
        assert not unexpected, unexpected
        batch.refresh_from_db()
        assert batch.status == BatchStatus.PRE_DEPLOYING
        # Whatever the interleaving: every release is deploying, at the tag its deployment has.
        for release in batch.releases.all():
            current = Deployment.objects.filter(release_app=release, environment="pre").current()
            assert release.status == "pre_deploying"
            assert [d.image_tag for d in current] == [release.image_tag]


def test_concurrent_detection_and_switches_do_not_deadlock(user, executor):
    notify(1, {"api": "v1", "web": "w1"})
    releases = []
    for b in range(4):
        batch = create_batch(
            name=f"b{b}", apps=[AppChoice("api"), AppChoice("web")], user=user
        ).batch
        releases.extend(batch.releases.all())
    notify(2, {"api": "v2", "web": "w2"})

    calls = [lambda r=r: switch_version(release_id=r.pk, user=user) for r in releases]
    calls += [lambda n=n: notify(n, {"web": f"w{n}", "api": f"v{n}"}) for n in range(3, 7)]
    results = _race(*calls)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Batch.objects.filter(status=BatchStatus.PRE_WAITING).count() == 4
    # Every release ended at v2 (its switch) and knows of the highest build, v6.
    assert set(ReleaseApp.objects.values_list("latest_image_tag", flat=True)) == {"v6", "w6"}
