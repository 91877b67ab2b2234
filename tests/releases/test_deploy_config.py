"""An application's deploy config is checked where it is written (the admin's form)."""

import pytest
from django.core.exceptions import ValidationError

from releases.models import Application

pytestmark = pytest.mark.django_db  # full_clean checks the unique name too

GOOD = {
    "pre": {"namespace": "shop-pre", "image": "reg/{app}:{image_tag}", "env": {"LOG": "debug"}},
    "prod": {"command": ["/deploy", "--wait"]},
}


def test_a_complete_config_is_accepted():
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
