import pytest

from tests.fakes import RecordingExecutor


@pytest.fixture
def executor(settings) -> RecordingExecutor:
    """Route Job operations to an executor that records them, for tests of the workflows."""
    settings.DEPLOY_EXECUTOR = "tests.fakes.RecordingExecutor"
    RecordingExecutor.reset()
    return RecordingExecutor()
