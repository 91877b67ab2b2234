"""The Applications list is the "what runs where" overview; an application's page too."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from applications.models import Application
from deployments.models import Deployment
from releases.services import create_batch, start_pre_deploy, start_prod_deploy
from releases.services.batches import AppChoice
from tests.helpers import notify, old_deployments, run_stage
from tests.pages import row, text

pytestmark = pytest.mark.django_db

LIST = "/admin/applications/application/"


@pytest.fixture
def history(engineer, executor):
    """api: v1 in prod, v2 passed pre and failed prod (Dec open); web: v1 in pre only;
    db: built, never deployed."""
    notify(1, {"api": "v1", "web": "w1", "db": "d1"})
    nov = create_batch(name="Nov", apps=[AppChoice("api")], user=engineer).batch
    run_stage(start_pre_deploy(batch_id=nov.pk, user=engineer))
    run_stage(start_prod_deploy(batch_id=nov.pk, user=engineer))
    notify(2, {"api": "v2"})
    dec = create_batch(name="Dec", apps=[AppChoice("api"), AppChoice("web")], user=engineer).batch
    run_stage(start_pre_deploy(batch_id=dec.pk, user=engineer))
    run_stage(start_prod_deploy(batch_id=dec.pk, user=engineer), outcomes={"api": "failed"})
    return {"nov": nov, "dec": dec}


def test_the_list_says_what_runs_where(client, viewer, history):
    client.force_login(viewer)

    response = client.get(LIST)

    assert response.status_code == 200
    api = row(response, ">api<")
    failed = Deployment.objects.get(release_app__batch=history["dec"], status="failed")
    good = Deployment.objects.get(release_app__batch=history["nov"], environment="prod")
    assert reverse("admin:deployments_deployment_change", args=[good.pk]) in api
    assert reverse("admin:deployments_deployment_change", args=[failed.pk]) in api
    assert reverse("admin:releases_batch_change", args=[history["nov"].pk]) in api
    assert "rt-badge-behind" in api  # prod runs v1, v2 is the latest build
    assert "Prod attempt with" in api and "failed" in api
    db = row(response, ">db<")
    assert db.count("never deployed") == 2
    assert "d1" in db and "build #1" in db
    web = row(response, ">web<")
    dec_release = history["dec"].releases.get(application__name="web")
    assert reverse("admin:releases_releaseapp_change", args=[dec_release.pk]) in web


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("?prod=behind", ["api"]),
        ("?prod=never", ["db"]),
        ("?pre=never", ["db"]),
        ("?pre=behind", []),
        ("?q=w1", ["web"]),
        ("?q=v", ["api"]),
        ("?q=d", ["db"]),
    ],
)
def test_filters_and_search_by_tag(client, viewer, history, query, shown):
    client.force_login(viewer)

    response = client.get(LIST + query)

    names = [a.name for a in response.context["cl"].result_list]
    assert names == shown


def test_the_application_page_shows_the_same_and_recent_deployments(client, viewer, history):
    client.force_login(viewer)
    api = Application.objects.get(name="api")

    response = client.get(reverse("admin:applications_application_change", args=[api.pk]))

    assert response.status_code == 200
    page = text(response)
    assert "What runs where" in page and "Recent deployments" in page
    assert "Prod attempt with v2 failed" in page
    for deployment in Deployment.objects.filter(application=api):
        assert reverse("admin:deployments_deployment_change", args=[deployment.pk]) in (
            response.content.decode()
        )


def test_the_list_and_its_live_view_cost_the_same_queries_whatever_the_history(
    client, viewer, history
):
    client.force_login(viewer)
    live = (
        reverse("admin:applications_application_live_list")
        + "?ids="
        + ",".join(str(pk) for pk in Application.objects.values_list("pk", flat=True))
    )

    def count(url) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    count(LIST)  # warms per-process caches
    before = count(LIST), count(live)
    release = history["nov"].releases.get()
    old_deployments(release, 10_000)

    assert (count(LIST), count(live)) == before


def test_the_list_in_chinese(client, viewer, history, settings):
    client.force_login(viewer)

    response = client.get(LIST, HTTP_ACCEPT_LANGUAGE="zh-hans")

    page = text(response)
    for words in ("预发布当前", "生产当前", "最新构建", "所在的未关闭批次", "从未部署", "落后"):
        assert words in page, words
