"""Env values of a deployment's config are for those who may change deploy configs."""

import pytest

from applications.models import Application
from deployments.models import Deployment
from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import READ_PERMISSIONS, notify

pytestmark = pytest.mark.django_db

SECRET = "s3cret-password"


@pytest.fixture
def deployment(user):
    notify(1, {"api": "v1"})
    Application.objects.filter(name="api").update(
        deploy_config={"pre": {"env": {"DB_PASSWORD": SECRET, "LOG": "debug"}}}
    )
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    start_pre_deploy(batch_id=batch.pk, user=user)
    return Deployment.objects.get()


URLS = [
    "/api/v1/deployments/",
    "/api/v1/deployments/{id}/",
    "/api/v1/releases/{release}/status",
]


@pytest.mark.parametrize("url", URLS)
def test_a_reader_sees_the_env_names_but_not_their_values(client_with, deployment, url):
    response = client_with(*READ_PERMISSIONS).get(
        url.format(id=deployment.pk, release=deployment.release_app_id)
    )

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    config = response.json()
    config = (config.get("results") or config.get("history") or [config])[0]["config"]
    assert config["env"] == {"DB_PASSWORD": None, "LOG": None}


@pytest.mark.parametrize("url", URLS)
def test_who_may_change_deploy_configs_sees_the_values(client_with, deployment, url):
    response = client_with(*READ_PERMISSIONS, "applications.change_deploy_config").get(
        url.format(id=deployment.pk, release=deployment.release_app_id)
    )

    assert SECRET in response.content.decode()


def test_stage_start_answers_hide_the_values_too(client_with, deployment):
    api = client_with(*READ_PERMISSIONS, "applications.deploy_batch", "releases.add_batch")
    notify(2, {"web": "w1"})

    response = api.post("/api/v1/batches/", {"name": "Dec", "apps": [{"name": "api"}]})
    start = api.post(f"/api/v1/batches/{response.json()['batch']['id']}/start-pre-deploy")

    assert start.status_code == 200
    assert start.json()["deployments"]
    assert SECRET not in start.content.decode()


def test_a_superuser_sees_the_values(deployment):
    from tests.helpers import token_client

    response = token_client(UserFactory(is_superuser=True)).get("/api/v1/deployments/")

    assert SECRET in response.content.decode()
