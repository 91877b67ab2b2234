"""Applications in the admin: the deploy config needs its own permission, its env values are
shown only to those who hold it, and the name is fixed once a build has named the app."""

import json

import pytest

from applications.models import Application
from deployments.models import Deployment
from releases.services import start_pre_deploy
from tests.pages import staff, text

pytestmark = pytest.mark.django_db

SECRET = "s3cret-password"
CONFIG = {"pre": {"env": {"DB_PASSWORD": SECRET}}}


@pytest.fixture
def editor():
    """May change applications, but not their deploy config."""
    return staff("editor", "applications.change_application")


@pytest.fixture
def operator():
    return staff("operator", "applications.change_application", "applications.change_deploy_config")


@pytest.fixture
def api(batch):
    Application.objects.filter(name="api").update(deploy_config=CONFIG)
    return Application.objects.get(name="api")


def _url(app) -> str:
    return f"/admin/applications/application/{app.pk}/change/"


def _post(client, app, **changes):
    data = {"name": app.name, "deploy_config": json.dumps(app.deploy_config), **changes}
    return client.post(_url(app), data)


def test_without_the_permission_the_config_is_read_only_and_its_secrets_hidden(client, editor, api):
    client.force_login(editor)

    page = client.get(_url(api))

    assert page.status_code == 200
    assert 'name="deploy_config"' not in page.content.decode()
    assert "DB_PASSWORD" in text(page) and SECRET not in page.content.decode()

    _post(client, api, deploy_config=json.dumps({"pre": {"namespace": "kube-system"}}))
    api.refresh_from_db()
    assert api.deploy_config == CONFIG


def test_with_the_permission_the_config_is_edited_within_the_allow_lists(
    client, operator, api, settings
):
    settings.DEPLOY_ALLOWED_NAMESPACES = ["shop-*"]
    client.force_login(operator)
    assert SECRET in client.get(_url(api)).content.decode()

    refused = _post(client, api, deploy_config=json.dumps({"pre": {"namespace": "kube-system"}}))
    assert refused.status_code == 200 and "not allowed" in text(refused)
    api.refresh_from_db()
    assert api.deploy_config == CONFIG

    _post(client, api, deploy_config=json.dumps({"pre": {"namespace": "shop-pre"}}))
    api.refresh_from_db()
    assert api.deploy_config == {"pre": {"namespace": "shop-pre"}}


def test_the_name_is_fixed_once_a_build_named_the_app(client, operator, api):
    client.force_login(operator)
    never_built = Application.objects.create(name="manual")

    page = client.get(_url(api))
    assert 'name="name"' not in page.content.decode()
    _post(client, api, name="renamed")
    api.refresh_from_db()
    assert api.name == "api"

    assert 'name="name"' in client.get(_url(never_built)).content.decode()
    _post(client, never_built, name="manual-2")
    never_built.refresh_from_db()
    assert never_built.name == "manual-2"


def test_a_deployments_env_values_are_shown_only_with_the_permission(
    client, viewer, operator, api, engineer
):
    start_pre_deploy(batch_id=api.releases.get().batch_id, user=engineer)
    deployment = Deployment.objects.get(release_app__application=api)
    url = f"/admin/deployments/deployment/{deployment.pk}/change/"

    client.force_login(viewer)
    page = client.get(url)
    assert "DB_PASSWORD" in text(page) and SECRET not in page.content.decode()

    client.force_login(operator)
    assert SECRET in client.get(url).content.decode()
