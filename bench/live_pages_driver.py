"""The user's side of `bench.live_pages`, run inside the tree under test (main's or this one).

    PYTHONPATH=TREE python bench/live_pages_driver.py seed --sizes 20,200,1000
    PYTHONPATH=TREE python bench/live_pages_driver.py tag APP NUMBER

Only services that both trees have (ingest, create_batch, start_pre_deploy, the deployment
outcomes), so the same script seeds the code before and after issue 19. Prints one JSON line.
"""

import argparse
import json
import random
import sys
from datetime import timedelta


def seed(sizes: list[int]) -> dict:
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Permission
    from django.contrib.sessions.backends.db import SessionStore
    from django.urls import reverse
    from django.utils import timezone

    from builds.notifications import AppImage, BuildNotification
    from deployments.models import Deployment
    from releases.services import (
        apply_deployment_outcome,
        create_batch,
        ingest_build_notification,
        start_pre_deploy,
    )
    from releases.services.batches import AppChoice

    apps = [f"app{i:04d}" for i in range(sum(sizes))]
    number = 0
    for number, start in enumerate(range(0, len(apps), 200), start=1):
        ingest_build_notification(
            notification=BuildNotification(
                number=number,
                status="success",
                apps=tuple(AppImage(name, "v1") for name in apps[start : start + 200]),
                repo="org/bench",
            )
        )
    # A release engineer as the admin sees one: staff, every permission of the product's apps.
    user = get_user_model().objects.create_user("bench", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["applications", "releases", "builds", "deployments"]
        )
    )
    batches, offset = {}, 0
    for size in sizes:
        chosen = [AppChoice(name) for name in apps[offset : offset + size]]
        batches[size] = create_batch(name=f"live-{size}", apps=chosen, user=user).batch
        offset += size

    # The Applications list's first page shows when each app last reached pre: the first
    # batch's apps, deployed at times spread over the last hour.
    first = batches[sizes[0]]
    for deployment in start_pre_deploy(batch_id=first.pk, user=user).deployments:
        # Its Job "started" (seed data: the reconciler's claim is not what is measured).
        Deployment.objects.filter(pk=deployment.pk).update(
            status="running",
            job_name=f"rt-{deployment.pk}",
            job_namespace="pre",
            started_at=timezone.now(),
        )
        apply_deployment_outcome(deployment_id=deployment.pk, outcome="succeeded")
    rng = random.Random(19)
    for pk in Deployment.objects.filter(release_app__batch=first).values_list("pk", flat=True):
        ago = timedelta(seconds=rng.uniform(60, 3600))
        Deployment.objects.filter(pk=pk).update(finished_at=timezone.now() - ago)

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    middle = batches[sizes[1]] if len(sizes) > 1 else first
    return {
        "session": session.session_key,
        "pages": {
            str(size): reverse("admin:releases_batch_change", args=[batch.pk])
            for size, batch in batches.items()
        },
        "applications": reverse("admin:applications_application_changelist"),
        "release_id": first.releases.order_by("pk").first().pk,
        "tag_app": middle.releases.order_by("pk")[7].application.name,
        "next_build": number + 1,
    }


def tag(app: str, number: int) -> dict:
    from builds.notifications import AppImage, BuildNotification
    from releases.services import ingest_build_notification

    result = ingest_build_notification(
        notification=BuildNotification(
            number=number, status="success", apps=(AppImage(app, "v9"),), repo="org/bench"
        )
    )
    return {"new_tags": len(result.new_tags)}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--sizes", default="20,200,1000")
    tagging = commands.add_parser("tag")
    tagging.add_argument("app")
    tagging.add_argument("number", type=int)
    args = parser.parse_args()

    import django

    django.setup()
    if args.command == "seed":
        out = seed([int(s) for s in args.sizes.split(",")])
    else:
        out = tag(args.app, args.number)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
