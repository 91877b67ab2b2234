"""An application's deploy config is checked where it is written (the admin's form)."""

import pytest
from django.core.exceptions import ValidationError

from applications.models import Application

pytestmark = pytest.mark.django_db  # full_clean checks the unique name too

GOOD = {
    "pre": {"namespace": "shop-pre", "image": "reg/{app}:{image_tag}", "env": {"LOG": "debug"}},
    "prod": {"command": ["/deploy", "--wait"]},
}


def test_a_complete_config_is_accepted(settings):
    settings.DEPLOY_ALLOWED_NAMESPACES = ["shop-*"]
    settings.DEPLOY_ALLOWED_IMAGES = ["reg/*"]
    Application(name="api", deploy_config=GOOD).full_clean()


@pytest.mark.parametrize(
    "config",
    [
        [],
        {"staging": {}},
        {"pre": "shop-pre"},
        {"pre": {"namespace": "Shop_Pre"}},
        {"pre": {"namespace": "n" * 64}},
        {"pre": {"image": 5}},
        {"pre": {"command": "/deploy --wait"}},
        {"pre": {"env": {"A=B": "x"}}},
        {"pre": {"env": {"A": 1}}},
    ],
)
def test_a_config_no_executor_could_use_is_refused(config):
    with pytest.raises(ValidationError) as err:
        Application(name="api", deploy_config=config).full_clean()
    assert "deploy_config" in err.value.message_dict


# --- Where a config may send Jobs: DEPLOY_ALLOWED_NAMESPACES / DEPLOY_ALLOWED_IMAGES ---


@pytest.fixture
def allowed(settings):
    settings.DEPLOY_NAMESPACES = {"pre": "rt-pre", "prod": "rt-prod"}
    settings.DEPLOY_JOB_IMAGE = "registry.example.com/deployer:1"
    settings.DEPLOY_ALLOWED_NAMESPACES = []
    settings.DEPLOY_ALLOWED_IMAGES = []
    return settings


@pytest.mark.parametrize(
    "config",
    [
        {"pre": {"namespace": "kube-system"}},
        {"prod": {"namespace": "shop-pre"}},
        {"pre": {"image": "evil.example.com/miner:latest"}},
        {"pre": {"image": "registry.example.com/deployer:2"}},
    ],
)
def test_with_empty_allow_lists_only_the_defaults_may_be_named(allowed, config):
    with pytest.raises(ValidationError) as err:
        Application(name="api", deploy_config=config).full_clean()
    assert "not allowed" in str(err.value.message_dict["deploy_config"])


def test_the_defaults_themselves_are_always_allowed(allowed):
    Application(
        name="api",
        deploy_config={
            "pre": {"namespace": "rt-prod", "image": "registry.example.com/deployer:1"},
            "prod": {"env": {"LOG": "debug"}},
        },
    ).full_clean()


def test_patterns_widen_what_is_allowed(allowed):
    allowed.DEPLOY_ALLOWED_NAMESPACES = ["shop-*"]
    allowed.DEPLOY_ALLOWED_IMAGES = ["registry.example.com/shop/*"]

    Application(
        name="api",
        deploy_config={
            "pre": {"namespace": "shop-pre", "image": "registry.example.com/shop/{app}:{image_tag}"}
        },
    ).full_clean()
    with pytest.raises(ValidationError):
        Application(name="web", deploy_config={"pre": {"namespace": "team-pre"}}).full_clean()
    with pytest.raises(ValidationError):
        Application(
            name="web", deploy_config={"pre": {"image": "registry.example.com/other/x:1"}}
        ).full_clean()
