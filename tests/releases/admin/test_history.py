"""Builds and deployments in the admin: read-only, linked along the superseded chain."""

import pytest
from django.urls import reverse

from builds.models import Build
from deployments.models import Deployment
from releases.services import start_pre_deploy, switch_version
from tests.helpers import run_stage
from tests.pages import row, text

pytestmark = pytest.mark.django_db


def deployment_url(deployment):
    return reverse("admin:deployments_deployment_change", args=[deployment.pk])


@pytest.fixture
def chain(batch, engineer):
    """api deployed to pre at v1, then switched to v2: old pre deployment superseded by new."""
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer))
    api = batch.releases.get(application__name="api")
    old = Deployment.objects.get(release_app=api)
    new = switch_version(release_id=api.pk, user=engineer).deployment
    return old, new


def test_deployment_pages_link_both_ways_along_the_chain(client, viewer, chain):
    old, new = chain
    client.force_login(viewer)

    old_page = client.get(deployment_url(old))
    new_page = client.get(deployment_url(new))

    assert old_page.status_code == new_page.status_code == 200
    assert f'href="{deployment_url(new)}"' in old_page.content.decode()  # superseded by
    assert f'href="{deployment_url(old)}"' in new_page.content.decode()  # supersedes
    assert "Succeeded" in text(old_page)
    assert reverse("admin:releases_releaseapp_change", args=[old.release_app_id]) in (
        old_page.content.decode()
    )


def test_deployment_list_filters_current_and_superseded(client, viewer, chain):
    old, new = chain
    client.force_login(viewer)
    changelist = reverse("admin:deployments_deployment_changelist")

    current = client.get(changelist, {"current": "1"}).context["cl"].result_list
    superseded = client.get(changelist, {"current": "0"}).context["cl"].result_list

    assert new in current and old not in current
    assert list(superseded) == [old]
    line = row(client.get(changelist), f">#{old.pk} Pre<")
    assert f'href="{deployment_url(new)}"' in line


def test_deployments_and_builds_are_read_only(client, engineer, chain):
    old, _new = chain
    build = Build.objects.get(number=1)
    client.force_login(engineer)

    for url in (deployment_url(old), reverse("admin:builds_build_change", args=[build.pk])):
        page = client.get(url)
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        assert client.post(url, {"status": "failed"}).status_code == 403
    assert client.get(reverse("admin:builds_build_add")).status_code == 403
    assert client.get(reverse("admin:deployments_deployment_add")).status_code == 403
    old.refresh_from_db()
    assert old.status == "succeeded"


def test_build_list_filters_by_application_and_shows_what_it_produced(client, viewer, batch):
    client.force_login(viewer)
    api = batch.releases.get(application__name="api")

    response = client.get(
        reverse("admin:builds_build_changelist"), {"application": api.application_id}
    )

    assert [b.number for b in response.context["cl"].result_list] == [2, 1]
    assert "api v2" in text(response)


def test_build_page_lists_its_images(client, viewer, batch):
    client.force_login(viewer)
    build = Build.objects.get(number=1)

    response = client.get(reverse("admin:builds_build_change", args=[build.pk]))

    assert ">v1</code>" in row(response, ">api<")
    assert ">w1</code>" in row(response, ">web<")


def test_application_list_counts_releases_in_open_batches(client, viewer, batch, engineer):
    client.force_login(viewer)

    response = client.get(reverse("admin:applications_application_changelist"))

    assert response.status_code == 200
    # The overview names each open batch the app is in, linked to the app's release there.
    api = row(response, ">api<")
    release = batch.releases.get(application__name="api")
    assert reverse("admin:releases_releaseapp_change", args=[release.pk]) in api
    assert f">{batch.name}</a>" in api
