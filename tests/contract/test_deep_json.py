"""A body nested too deeply for the JSON parser is bad input (400 `invalid`), not a 500."""

import json

import pytest

from tests.helpers import notify

pytestmark = pytest.mark.django_db

DEEP = b"[" * 1000 + b"]" * 1000


@pytest.fixture
def ids(api):
    notify(1, {"api": "v1"})
    batch = api.post(
        "/api/v1/batches/", {"name": "Nov", "apps": [{"name": "api"}]}, format="json"
    ).json()["batch"]
    return batch["id"], batch["releases"][0]["id"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/batches/",
        "/api/v1/batches/{batch}/start-pre-deploy",
        "/api/v1/batches/{batch}/start-prod-deploy",
        "/api/v1/batches/{batch}/cancel",
        "/api/v1/releases/{release}/switch-version",
        "/api/v1/builds/notify",
    ],
)
def test_a_deeply_nested_body_is_400_invalid_everywhere(api, ids, url):
    batch, release = ids
    response = api.post(
        url.format(batch=batch, release=release), DEEP, content_type="application/json"
    )

    assert response.status_code == 400
    body = json.loads(response.content)
    assert body["code"] == "invalid"
