"""Measured proposals: the status endpoint and the ingest endpoint with the fixes proposed in
docs/performance.md applied as bench-only patches (the product code is not changed here).

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.experiments all

Each variant is timed in-process against the unpatched endpoint and the floor view, in
alternating rounds, and must answer the same JSON as the unpatched endpoint.
"""

import json
import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.db.models import Exists, OuterRef, Q  # noqa: E402

import releases.api.views as release_views  # noqa: E402
from bench.measure import client, prepare  # noqa: E402
from deployments.models import Deployment  # noqa: E402
from releases import rules, selectors  # noqa: E402
from releases.models import ReleaseApp  # noqa: E402
from utilities.api.authentication import BearerTokenAuthentication  # noqa: E402
from utilities.errors import DomainError  # noqa: E402

ROUNDS, N = 5, int(os.environ.get("BENCH_EXPERIMENT_N", "100"))


def release_status_lean(*, release_id: int, user) -> selectors.ReleaseStatusView:
    """Proposal B: the same view in 2 queries instead of 3, without the model's ORDER BY.

    The release query drops Meta.ordering (a join to applications and a sort, for one row);
    current deployments and the newest 50 come from one query (the current ones of a release
    are nearly always among its newest, and are appended when they are not).
    """
    release = (
        ReleaseApp.objects.select_related(
            "batch", "application", "build", "latest_build", "tag_updated_by"
        )
        .annotate(
            deployment_in_progress=Exists(
                Deployment.objects.filter(release_app=OuterRef("pk")).in_progress()
            )
        )
        .filter(pk=release_id)
        .order_by()
        .first()
    )
    if release is None:
        raise DomainError("not_found", f"Release {release_id} does not exist.")
    newest = (
        Deployment.objects.filter(release_app_id=release_id)
        .order_by("-created_at", "-pk")
        .values("pk")[: selectors.HISTORY_LIMIT]
    )
    rows = list(
        Deployment.objects.filter(release_app_id=release_id)
        .filter(Q(superseded_at__isnull=True) | Q(pk__in=newest))
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )
    return selectors.ReleaseStatusView(
        release=release,
        switch_blockers=rules.switch_blockers(
            user=user,
            application=release.application,
            batch_status=release.batch.status,
            deployment_in_progress=release.deployment_in_progress,
        ),
        current_deployments=sorted(
            (d for d in rows if d.superseded_at is None), key=lambda d: d.environment
        ),
        history=rows[: selectors.HISTORY_LIMIT],
    )


_AUTH_CACHE: dict = {}
_original_credentials = BearerTokenAuthentication.authenticate_credentials


def cached_credentials(self, key):
    """Proposal A: a token's user and its permission set cached for a short while (here for
    the whole run; a real one would expire entries after ~30 s and on permission changes)."""
    hit = _AUTH_CACHE.get(key)
    if hit is None:
        user, token = _original_credentials(self, key)
        user.get_all_permissions()  # fills the per-object permission caches once
        hit = _AUTH_CACHE[key] = (user, token)
    return hit


VARIANTS = {
    "unpatched": [],
    "A: cached token + permissions": [
        (BearerTokenAuthentication, "authenticate_credentials", cached_credentials)
    ],
    "B: status in 2 queries, no ORDER BY": [(release_views, "release_status", release_status_lean)],
    "A + B": [
        (BearerTokenAuthentication, "authenticate_credentials", cached_credentials),
        (release_views, "release_status", release_status_lean),
    ],
}


def apply(patches):
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    return saved


def median_ms(fn) -> float:
    samples = []
    for _ in range(N):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> dict:
    probe = prepare()
    web = client(probe)
    status_url = f"/api/v1/releases/{probe['status_release']}/status"
    floor_url = f"/bench/floor/select/{probe['status_release']}"
    reference = web.get(status_url).json()
    times: dict[str, list[float]] = {name: [] for name in [*VARIANTS, "floor"]}
    for _ in range(ROUNDS):
        times["floor"].append(median_ms(lambda: web.get(floor_url)))
        for name, patches in VARIANTS.items():
            saved = apply(patches)
            try:
                assert web.get(status_url).json() == reference, name
                times[name].append(median_ms(lambda: web.get(status_url)))
            finally:
                apply(saved)
            _AUTH_CACHE.clear()
    floor = statistics.median(times["floor"])
    return {
        name: {
            "status_ms": round(statistics.median(t), 2),
            "floor_ms": round(floor, 2),
            "in_process_ratio": round(floor / statistics.median(t), 3),
        }
        for name, t in times.items()
        if name != "floor"
    }


if __name__ == "__main__":
    print(json.dumps(main()))
    sys.exit(0)
