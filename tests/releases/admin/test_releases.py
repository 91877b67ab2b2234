"""Releases in the admin: filters, the Switch version button and form, the bulk action."""

import pytest
from django.urls import reverse

from deployments.models import Deployment
from releases.choices import BatchStatus, ReleaseStatus
from releases.models import ReleaseApp
from releases.services import cancel_batch, create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.helpers import deployment_mark_running, notify, run_stage
from tests.pages import messages_of, row, text

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:releases_releaseapp_changelist")
BATCH_NOT_WAITING = "The batch is deploying to pre; switch once its stage has finished."


@pytest.fixture
def api(batch) -> ReleaseApp:
    return batch.releases.get(application__name="api")


@pytest.fixture
def web(batch) -> ReleaseApp:
    return batch.releases.get(application__name="web")


def switch_url(release):
    return reverse("admin:releases_releaseapp_switch", args=[release.pk])


def change_url(release):
    return reverse("admin:releases_releaseapp_change", args=[release.pk])


def snapshot():
    """Everything a switch could change."""
    return (
        list(ReleaseApp.objects.order_by("pk").values_list("pk", "image_tag", "status")),
        list(Deployment.objects.order_by("pk").values_list("pk", "status", "superseded_at")),
        list(ReleaseApp.objects.order_by("pk").values_list("batch__status", flat=True)),
    )


def listed_apps(response) -> list[str]:
    return [str(r.application) for r in response.context["cl"].result_list]


@pytest.mark.parametrize(
    ("query", "apps"),
    [
        ({}, ["api", "web"]),
        ({"has_new_tag": "1"}, ["api"]),
        ({"has_new_tag": "0"}, ["web"]),
        ({"batch_status": BatchStatus.PRE_WAITING}, ["api", "web"]),
        ({"batch_status": BatchStatus.PRE_DEPLOYING}, []),
        ({"q": "we"}, ["web"]),
    ],
)
def test_list_filters_and_search(client, viewer, batch, query, apps):
    client.force_login(viewer)

    response = client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert sorted(listed_apps(response)) == apps


def test_list_filters_by_application(client, viewer, batch, api):
    client.force_login(viewer)

    response = client.get(CHANGELIST, {"application__id__exact": api.application_id})

    assert listed_apps(response) == ["api"]


def test_list_shows_tags_and_the_new_tag_badge(client, viewer, batch):
    client.force_login(viewer)

    response = client.get(CHANGELIST)

    api, web = row(response, ">api<"), row(response, ">web<")
    assert ">v1</code>" in api and ">v2</code>" in api and "new tag" in api
    assert ">w1</code>" in web and "new tag" not in web


def test_switch_holders_get_a_switch_button_others_none(client, viewer, switcher, api, web):
    client.force_login(switcher)
    response = client.get(CHANGELIST)
    assert f'href="{switch_url(api)}"' in row(response, ">api<")
    assert "rt-button-primary" in row(response, ">api<")  # the new tag makes it stand out
    assert f'href="{switch_url(web)}"' in row(response, ">web<")

    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert "/switch/" not in response.content.decode()
    assert "switch_to_latest" not in response.content.decode()


def test_while_the_batch_deploys_the_button_is_disabled_and_says_why(
    client, switcher, engineer, batch, api
):
    client.force_login(switcher)
    start_pre_deploy(batch_id=batch.pk, user=engineer)

    for url in (CHANGELIST, reverse("admin:releases_batch_change", args=[batch.pk])):
        line = row(client.get(url), ">api<")
        assert "<button" in line and "disabled" in line and "Switch version" in line
        assert BATCH_NOT_WAITING in line.replace("&#x27;", "'")
        assert switch_url(api) not in line


def test_a_deployment_in_flight_disables_the_button_too(client, switcher, engineer, api):
    client.force_login(switcher)
    switched = switch_version(release_id=api.pk, user=engineer)
    deployment_mark_running(
        deployment_id=switched.deployment.pk, job_name="rt-deploy-x", job_namespace="rt-pre"
    )

    page = text(client.get(change_url(api)))

    assert "Switching is blocked right now: A deployment of this release is running." in page


def test_the_form_offers_successful_tags_newest_first_with_latest_preselected(
    client, switcher, api
):
    notify(3, {"api": "v3-broken"}, status="failure", repo="org/shop")
    client.force_login(switcher)

    response = client.get(switch_url(api))

    assert response.status_code == 200
    form = response.context["form"]
    assert [(o.image_tag, o.build.number) for o in form.options] == [("v2", 2), ("v1", 1)]
    assert form.selected_tag == "v2"
    page = response.content.decode()
    assert 'value="v2" checked' in page
    assert '<input type="hidden" name="expected_image_tag" value="v1"' in page
    assert "#2" in row(response, 'value="v2"') and "latest" in row(response, 'value="v2"')
    assert "current" in row(response, 'value="v1"')


def test_switching_changes_the_tag_and_says_so(client, switcher, batch, api):
    client.force_login(switcher)
    next_url = reverse("admin:releases_batch_change", args=[batch.pk])

    response = client.post(
        switch_url(api),
        {"image_tag": "v2", "expected_image_tag": "v1", "next": next_url},
        follow=True,
    )

    assert response.redirect_chain == [(next_url, 302)]
    assert messages_of(response) == [
        "Switched api from v1 to v2. A new pre deployment waits for the next pre rollout."
    ]
    api.refresh_from_db()
    assert (api.image_tag, api.has_new_tag, api.tag_updated_by) == ("v2", False, switcher)
    assert ">v2</code>" in row(response, ">api<")
    assert "new tag" not in row(response, ">api<")
    assert Deployment.objects.get(release_app=api).image_tag == "v2"


def test_switching_to_an_older_tag_and_back(client, switcher, api):
    client.force_login(switcher)
    client.post(switch_url(api), {"image_tag": "v2", "expected_image_tag": "v1"})

    response = client.post(
        switch_url(api), {"image_tag": "v1", "expected_image_tag": "v2"}, follow=True
    )

    api.refresh_from_db()
    assert api.image_tag == "v1" and api.has_new_tag
    assert messages_of(response)[-1].startswith("Switched api from v2 to v1.")
    assert response.redirect_chain == [(change_url(api), 302)]


def test_switching_in_a_batch_waiting_for_prod_reopens_pre(client, switcher, engineer, batch, api):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer))
    client.force_login(switcher)

    response = client.post(
        switch_url(api), {"image_tag": "v2", "expected_image_tag": "v1"}, follow=True
    )

    assert "The batch went back to waiting for pre: the new tag must pass pre first." in (
        messages_of(response)
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PRE_WAITING


def test_the_same_switch_twice_changes_nothing_the_second_time(client, switcher, api):
    client.force_login(switcher)
    client.post(switch_url(api), {"image_tag": "v2", "expected_image_tag": "v1"}, follow=True)
    before = snapshot()

    response = client.post(
        switch_url(api), {"image_tag": "v2", "expected_image_tag": "v2"}, follow=True
    )

    assert snapshot() == before
    assert messages_of(response) == ["api is already at v2; nothing changed."]


def test_a_blocked_switch_changes_nothing(client, switcher, engineer, batch, api):
    start_pre_deploy(batch_id=batch.pk, user=engineer)
    client.force_login(switcher)
    before = snapshot()

    page = client.get(switch_url(api))
    response = client.post(
        switch_url(api), {"image_tag": "v2", "expected_image_tag": "v1"}, follow=True
    )

    assert 'type="submit" class="default" value="Switch version" disabled' in page.content.decode()
    assert snapshot() == before
    assert messages_of(response) == [BATCH_NOT_WAITING]
    assert response.redirect_chain == [(switch_url(api), 302)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_switch_in_a_closed_batch_says_the_batch_can_no_longer_change(
    client, switcher, engineer, batch, api, language
):
    cancel_batch(batch_id=batch.pk, user=engineer)
    client.force_login(switcher)
    before = snapshot()
    words = {
        "en": "The batch is cancelled; it can no longer change.",
        "zh-hans": "批次已处于“已取消”状态，不能再更改。",  # noqa: RUF001
    }[language]

    page = client.get(switch_url(api), HTTP_ACCEPT_LANGUAGE=language)
    response = client.post(
        switch_url(api),
        {"image_tag": "v2", "expected_image_tag": "v1"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert words in text(page)
    assert snapshot() == before
    assert messages_of(response) == [words]


def test_a_stale_form_changes_nothing(client, switcher, engineer, api):
    client.force_login(switcher)
    switch_version(release_id=api.pk, user=engineer, image_tag="v2")  # someone else, meanwhile
    before = snapshot()

    response = client.post(
        switch_url(api), {"image_tag": "v1", "expected_image_tag": "v1"}, follow=True
    )

    assert snapshot() == before
    assert messages_of(response) == [
        "The release's tag changed since you looked at it; reload and retry."
    ]
    assert response.context["form"]["expected_image_tag"].value() == "v2"


def test_a_tag_from_no_successful_build_is_refused(client, switcher, api):
    notify(3, {"api": "v3-broken"}, status="failure", repo="org/shop")
    client.force_login(switcher)
    before = snapshot()

    response = client.post(
        switch_url(api), {"image_tag": "v3-broken", "expected_image_tag": "v1"}, follow=True
    )

    assert snapshot() == before
    assert messages_of(response) == [
        "That tag did not come from a successful build of this application."
    ]


@pytest.mark.parametrize("method", ["get", "post"])
def test_without_the_permission_the_switch_url_is_forbidden(client, viewer, deployer, api, method):
    before = snapshot()
    for user in (viewer, deployer):
        client.force_login(user)

        response = getattr(client, method)(
            switch_url(api), {"image_tag": "v2", "expected_image_tag": "v1"}
        )

        assert response.status_code == 403
    assert snapshot() == before


def test_the_switch_url_of_a_missing_release_is_404(client, switcher):
    client.force_login(switcher)

    assert client.get(reverse("admin:releases_releaseapp_switch", args=[999999])).status_code == 404


def test_an_outside_next_url_is_ignored(client, switcher, api):
    client.force_login(switcher)

    response = client.post(
        switch_url(api),
        {"image_tag": "v2", "expected_image_tag": "v1", "next": "https://evil.example/"},
    )

    assert response["Location"] == change_url(api)


def test_release_page_links_builds_and_deployments(client, switcher, api):
    client.force_login(switcher)
    switched = switch_version(release_id=api.pk, user=switcher, image_tag="v2")

    response = client.get(change_url(api))

    page = response.content.decode()
    assert reverse("admin:builds_build_change", args=[api.latest_build_id]) in page
    assert reverse("admin:deployments_deployment_change", args=[switched.deployment.pk]) in page
    assert f"?application={api.application_id}" in page
    assert 'name="status"' not in page
    assert client.post(change_url(api), {"image_tag": "v9"}).status_code == 403


def test_bulk_switch_to_latest_reports_each_release(client, switcher, engineer, api, web):
    notify(3, {"db": "d1"}, repo="org/shop")
    other = create_batch(name="Dec", apps=[AppChoice("db")], user=engineer).batch
    notify(4, {"db": "d2"}, repo="org/shop")
    start_pre_deploy(batch_id=other.pk, user=engineer)
    db = other.releases.get()
    client.force_login(switcher)

    response = client.post(
        CHANGELIST,
        {"action": "switch_to_latest", "_selected_action": [api.pk, web.pk, db.pk]},
        follow=True,
    )

    assert messages_of(response) == [
        "Switched to the latest tag: api (Nov): v1 → v2",
        "Already at the latest tag, unchanged: web (Nov): w1",
        f"Not switched: db (Dec) — {BATCH_NOT_WAITING}",
    ]
    assert dict(ReleaseApp.objects.values_list("application__name", "image_tag")) == {
        "api": "v2",
        "web": "w1",
        "db": "d1",
    }
    db.refresh_from_db()
    assert db.status == ReleaseStatus.PRE_DEPLOYING


def test_the_bulk_action_is_not_available_without_the_permission(client, viewer, api):
    client.force_login(viewer)
    before = snapshot()

    client.post(CHANGELIST, {"action": "switch_to_latest", "_selected_action": [api.pk]})

    assert snapshot() == before


def test_the_batch_page_in_chinese(client, switcher, batch):
    client.force_login(switcher)

    response = client.get(
        reverse("admin:releases_batch_change", args=[batch.pk]), HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )

    line = row(response, ">api<")
    assert "新标签" in line
    assert "切换版本" in line
    assert "等待预发布" in text(response)


def test_the_index_leads_to_releases_with_a_new_tag(client, viewer, batch):
    client.force_login(viewer)

    response = client.get(reverse("admin:index"))

    assert f'href="{CHANGELIST}?has_new_tag=1"' in response.content.decode()
    assert "Releases with a new tag" in text(response)


def test_release_page_offers_the_switch_only_when_allowed(client, switcher, engineer, batch, api):
    client.force_login(switcher)
    waiting = client.get(change_url(api)).content.decode()
    start_pre_deploy(batch_id=batch.pk, user=engineer)
    deploying = client.get(change_url(api))

    assert f'<a class="rt-go-link" href="{switch_url(api)}">Switch version</a>' in waiting
    assert switch_url(api) not in deploying.content.decode()
    assert f"Switching is blocked right now: {BATCH_NOT_WAITING}" in text(deploying)


def test_releases_with_a_new_tag_are_those_of_open_batches(client, viewer, batch, engineer):
    closed = create_batch(name="Old", apps=[AppChoice("api", "v1")], user=engineer).batch
    cancel_batch(batch_id=closed.pk, user=engineer)
    client.force_login(viewer)

    response = client.get(CHANGELIST, {"has_new_tag": "1"})  # the start page's button

    assert [(str(r.application), r.batch.name) for r in response.context["cl"].result_list] == [
        ("api", "Nov")
    ]
