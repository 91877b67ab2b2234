import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

READ_PERMISSIONS = [
    "releases.view_batch",
    "releases.view_releaseapp",
    "deployments.view_deployment",
    "builds.view_build",
    "applications.view_application",
]
ALL_PERMISSIONS = [
    *READ_PERMISSIONS,
    "releases.add_batch",
    "applications.deploy_batch",
    "applications.switch_version",
    "builds.notify_build",
]


def token_client(user, keyword: str = "Bearer") -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    return client


@pytest.fixture
def client_with():
    """`client_with("applications.switch_version", ...)`: a client of a user holding exactly these."""

    def make(*permissions: str) -> APIClient:
        return token_client(UserFactory(permissions=list(permissions)))

    return make


@pytest.fixture
def api(client_with) -> APIClient:
    """A client of a user who may do everything the API offers."""
    return client_with(*ALL_PERMISSIONS)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
