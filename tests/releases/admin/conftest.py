import pytest

from releases.models import Batch
from tests.helpers import nov_batch


@pytest.fixture
def batch(engineer, executor) -> Batch:
    """Batch "Nov": api at v1 with v2 built since (a new tag), web at w1 and up to date."""
    return nov_batch(engineer, new_tag=True, repo="org/shop")
