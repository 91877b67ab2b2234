"""Parsing Drone's notification: every bad input is a field error, never an exception."""

import pytest

from builds.notifications import BuildNotification
from utilities.errors import DomainError

VALID = {
    "build_number": 11,
    "build_status": "success",
    "apps": [{"name": "api", "image_tag": "v1"}],
}


def test_valid_payload_with_extras_and_unknown_fields():
    n = BuildNotification.parse(
        VALID
        | {
            "repo": "org/r",
            "commit": "0a1b",
            "branch": "main",
            "link": "http://drone:8080/org/r/11",
            "x": 1,
        }
    )
    assert (n.number, n.status, n.repo, n.commit, n.branch) == (
        11,
        "success",
        "org/r",
        "0a1b",
        "main",
    )
    assert [(a.name, a.image_tag) for a in n.apps] == [("api", "v1")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({k: v for k, v in VALID.items() if k != "build_number"}, "build_number"),
        (VALID | {"build_number": "11"}, "build_number"),
        (VALID | {"build_number": True}, "build_number"),
        (VALID | {"build_number": 0}, "build_number"),
        (VALID | {"build_number": 2**63}, "build_number"),
        (VALID | {"build_status": "done"}, "build_status"),
        ({k: v for k, v in VALID.items() if k != "apps"}, "apps"),
        (VALID | {"apps": {"name": "api"}}, "apps"),
        (VALID | {"apps": [{"name": "api", "image_tag": ".bad"}]}, "apps"),
        (VALID | {"apps": [{"name": "api", "image_tag": "x" * 129}]}, "apps"),
        (VALID | {"apps": [{"name": "-api", "image_tag": "v1"}]}, "apps"),
        (VALID | {"apps": ["api"]}, "apps"),
        (VALID | {"repo": 5}, "repo"),
        (VALID | {"link": "javascript:alert(1)"}, "link"),
        (VALID | {"link": "https:///no-host"}, "link"),
        (VALID | {"commit": "c" * 65}, "commit"),
    ],
)
def test_bad_payloads_name_the_field(payload, field):
    with pytest.raises(DomainError) as err:
        BuildNotification.parse(payload)
    assert err.value.code == "invalid" and err.value.status_code == 400
    assert field in err.value.fields


@pytest.mark.parametrize("payload", [None, [], "text", 11])
def test_a_body_that_is_not_an_object(payload):
    with pytest.raises(DomainError) as err:
        BuildNotification.parse(payload)
    assert err.value.code == "invalid"


def test_the_same_app_twice_has_its_own_code():
    with pytest.raises(DomainError) as err:
        BuildNotification.parse(VALID | {"apps": [{"name": "api", "image_tag": "v1"}] * 2})
    assert (err.value.code, err.value.status_code) == ("duplicate_app", 400)
    assert err.value.fields == {"apps": ["apps[1].name: 'api' is listed twice."]}
