"""Where the time of one status read and one ingest goes, in-process (no HTTP, no gunicorn).

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.breakdown all

Medians over many calls of each piece on its own, next to the floor views, so the report can
say which part of the request makes it cost what it costs.
"""

import json
import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from bench.measure import PROBE_APPS, PROBE_REPO, client, next_number, prepare  # noqa: E402
from builds.notifications import BuildNotification  # noqa: E402
from releases.api.serializers import ReleaseStatusSerializer  # noqa: E402
from releases.models import ReleaseApp  # noqa: E402
from releases.selectors import release_status  # noqa: E402
from releases.services import ingest_build_notification  # noqa: E402
from utilities.api.authentication import BearerTokenAuthentication  # noqa: E402

N = int(os.environ.get("BENCH_BREAKDOWN_N", "200"))


def median_ms(fn, n: int = N) -> float:
    for _ in range(10):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(samples), 3)


def main() -> dict:
    probe = prepare()
    web = client(probe)
    release_id = probe["status_release"]
    user = get_user_model().objects.get(username="bench")
    out = {}

    out["floor SELECT view (whole Django request)"] = median_ms(
        lambda: web.get(f"/bench/floor/select/{release_id}")
    )
    out["floor INSERT view (whole Django request)"] = median_ms(
        lambda: web.post("/bench/floor/insert", '{"a": 1}', content_type="application/json")
    )

    def raw():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, image_tag FROM releases_releaseapp WHERE id = %s", [release_id]
            )
            cursor.fetchone()

    out["one raw SELECT by pk"] = median_ms(raw)
    out["one ORM SELECT by pk (.filter().first())"] = median_ms(
        lambda: ReleaseApp.objects.filter(pk=release_id).first()
    )

    def auth():
        fresh, _ = BearerTokenAuthentication().authenticate_credentials(probe["token"])
        fresh.has_perms(["releases.view_releaseapp"])

    out["API auth: token + permissions (3 queries)"] = median_ms(auth)
    out["status: selector (3 queries)"] = median_ms(
        lambda: release_status(release_id=release_id, user=user)
    )
    view = release_status(release_id=release_id, user=user)
    out["status: serializer (10 deployments of history)"] = median_ms(
        lambda: ReleaseStatusSerializer(view).data
    )
    out["status: whole endpoint"] = median_ms(
        lambda: web.get(f"/api/v1/releases/{release_id}/status")
    )

    numbers = iter(range(next_number(), 10**12))

    def body():
        number = next(numbers)
        return {
            "build_number": number,
            "build_status": "success",
            "repo": PROBE_REPO,
            "apps": [{"name": PROBE_APPS[number % 200], "image_tag": f"p{number}"}],
        }

    out["ingest: parse and validate"] = median_ms(lambda: BuildNotification.parse(body()))
    out["ingest: service, 1 app, first seen (12 statements)"] = median_ms(
        lambda: ingest_build_notification(notification=BuildNotification.parse(body()))
    )
    out["ingest: whole endpoint"] = median_ms(
        lambda: web.post(
            "/api/v1/builds/notify", json.dumps(body()), content_type="application/json"
        )
    )
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
    sys.exit(0)
