"""The release status (SPEC §6): what blocks a switch, for whom, in constant queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import Application
from deployments.models import Deployment
from releases.models import Batch
from releases.selectors import application_tag_choices, release_status
from releases.services import create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.factories import DeploymentFactory, UserFactory
from tests.helpers import notify, old_deployments
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    notify(2, {"api": "v2"})
    return batch.releases.get()


def _codes(view):
    return [b.code for b in view.switch_blockers]


def test_waiting_batch_and_permission_allow_switch(release, user):
    view = release_status(release_id=release.pk, user=user)

    assert view.can_switch and view.switch_blockers == []
    assert (view.release.image_tag, view.release.latest_image_tag) == ("v1", "v2")
    assert view.release.has_new_tag and view.release.latest_build.number == 2


def test_blockers_are_reported_for_the_requesting_user(release, user):
    start_pre_deploy(batch_id=release.batch_id, user=user)
    viewer = UserFactory(username="bob")

    assert _codes(release_status(release_id=release.pk, user=user)) == ["batch_not_waiting"]
    assert _codes(release_status(release_id=release.pk, user=viewer)) == [
        "permission_denied",
        "batch_not_waiting",
    ]


def test_blockers_match_what_the_switch_answers(release, user):
    DeploymentFactory(release_app=release, status="running", job_name="j")
    view = release_status(release_id=release.pk, user=user)
    assert _codes(view) == ["deployment_in_progress"] and not view.can_switch
    assert view.switch_blockers[0].detail  # a human sentence, not just a code

    with pytest.raises(DomainError) as err:
        switch_version(release_id=release.pk, user=user)
    assert err.value.code == view.switch_blockers[0].code


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_a_closed_batch_is_the_blocker_in_the_words_of_the_switch(release, user, status):
    Batch.objects.filter(pk=release.batch_id).update(status=status)
    DeploymentFactory(release_app=release, status="running", job_name="j")
    view = release_status(release_id=release.pk, user=user)

    with pytest.raises(DomainError) as err:
        switch_version(release_id=release.pk, user=user)

    assert [(b.code, b.detail) for b in view.switch_blockers] == [
        ("batch_closed", f"The batch is {status}; it can no longer change.")
    ]
    assert (err.value.code, err.value.detail) == ("batch_closed", view.switch_blockers[0].detail)


def test_a_deploying_batch_is_named_as_people_read_it(release, user):
    start_pre_deploy(batch_id=release.batch_id, user=user)
    view = release_status(release_id=release.pk, user=user)

    with pytest.raises(DomainError) as err:
        switch_version(release_id=release.pk, user=user)

    [blocker] = view.switch_blockers
    assert blocker.code == err.value.code == "batch_not_waiting"
    assert blocker.detail == err.value.detail
    assert "deploying to pre" in blocker.detail and "pre_deploying" not in blocker.detail


def test_history_is_newest_first_and_capped(release, user):
    for tag in ["v2", "v1"] * 30:
        switch_version(release_id=release.pk, user=user, image_tag=tag)

    view = release_status(release_id=release.pk, user=user)

    assert len(view.history) == 50
    assert view.history[0] == view.current_deployments[0]
    assert [d.pk for d in view.history] == sorted((d.pk for d in view.history), reverse=True)


def test_unknown_release_is_not_found(user):
    with pytest.raises(DomainError) as err:
        release_status(release_id=12345, user=user)
    assert err.value.code == "not_found"


def _queries_for_status(release, user) -> int:
    user = type(user).objects.get(pk=user.pk)  # fresh: no permission cache
    with CaptureQueriesContext(connection) as queries:
        release_status(release_id=release.pk, user=user)
    return len(queries)


def test_query_count_is_constant_whatever_the_history(release, user):
    empty = _queries_for_status(release, user)

    old_deployments(release, 500, environments=("pre",))
    assert Deployment.objects.filter(release_app=release).count() == 500

    # release + EXISTS, current, history, and the user's two permission lookups.
    assert empty == _queries_for_status(release, user) == 5


def test_tag_choices_are_the_newest_successful_builds_and_bounded():
    for number in range(1, 61):
        notify(number, {"api": f"v{number}"}, status="failure" if number == 60 else "success")
    api = Application.objects.get(name="api")
    tags = [i.image_tag for i in application_tag_choices(application_id=api.pk)]

    assert len(tags) == 50
    assert tags[:2] == ["v59", "v58"] and tags[-1] == "v10"


def test_blockers_are_translated_status_names_included(release, user):
    from django.utils import translation

    from tests.pages import compile_translations_if_stale

    compile_translations_if_stale()
    Batch.objects.filter(pk=release.batch_id).update(status="completed")

    with translation.override("zh-hans"):
        [blocker] = release_status(release_id=release.pk, user=user).switch_blockers

    assert blocker.detail == "批次已处于“已完成”状态，不能再更改。"  # noqa: RUF001
