"""Real threads, real transactions, real row locks on PostgreSQL."""

from collections import Counter

import pytest

from deployments.models import Deployment
from releases.choices import BatchStatus
from releases.models import Batch, ReleaseApp
from releases.services import create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.helpers import notify, race
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db(transaction=True)


def test_sixteen_identical_switches_make_one_change(user, executor):
    notify(1, {"api": "v1"})
    release = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch.releases.get()
    notify(2, {"api": "v2"})

    results = race(*[lambda: switch_version(release_id=release.pk, user=user, image_tag="v2")] * 16)

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

        results = race(
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
    results = race(*calls)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Batch.objects.filter(status=BatchStatus.PRE_WAITING).count() == 4
    # Every release ended at v2 (its switch) and knows of the highest build, v6.
    assert set(ReleaseApp.objects.values_list("latest_image_tag", flat=True)) == {"v6", "w6"}


def test_the_same_notification_eight_times_at_once_lands_once(user):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch

    results = race(*[lambda: notify(2, {"api": "v2", "new-app": "n1"})] * 8)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Counter((r.created, r.duplicate) for r in results) == {
        (True, False): 1,
        (False, True): 7,
    }
    # Exactly one of them detected the new tag.
    assert [len(r.new_tags) for r in results if r.created] == [1]
    assert sum(len(r.new_tags) for r in results) == 1
    assert batch.releases.get().latest_image_tag == "v2"
