import pytest

from releases.models import Batch
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.admin.pages import compile_translations_if_stale, staff
from tests.helpers import notify


@pytest.fixture
def viewer():
    """Sees everything, may neither switch nor roll out."""
    return staff("viewer")


@pytest.fixture
def switcher():
    return staff("switcher", "applications.switch_version")


@pytest.fixture
def deployer():
    return staff("deployer", "applications.deploy_batch")


@pytest.fixture
def engineer():
    return staff("engineer", "applications.switch_version", "applications.deploy_batch")


@pytest.fixture
def batch(engineer, executor) -> Batch:
    """Batch "Nov": api at v1 with v2 built since (a new tag), web at w1 and up to date."""
    notify(1, {"api": "v1", "web": "w1"}, repo="org/shop")
    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=engineer)
    notify(2, {"api": "v2"}, repo="org/shop")
    return batch.batch


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    compile_translations_if_stale()
