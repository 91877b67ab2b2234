import pytest

from tests.factories import UserFactory
from tests.fakes import RecordingExecutor


@pytest.fixture
def executor(settings) -> RecordingExecutor:
    """Route Job operations to an executor that records them, for tests of the workflows."""
    settings.DEPLOY_EXECUTOR = "tests.fakes.RecordingExecutor"
    RecordingExecutor.reset()
    return RecordingExecutor()


@pytest.fixture
def user():
    """alice, a release engineer: she may switch versions and roll batches out."""
    return UserFactory(
        username="alice", permissions=["releases.switch_version", "releases.deploy_batch"]
    )
