"""The user's side of `bench.rollout`, run inside the tree under test (today's or the new one).

    PYTHONPATH=TREE python bench/rollout_driver.py seed --batch small:200 --batch large:1000
    PYTHONPATH=TREE python bench/rollout_driver.py start BATCH_ID

Only services that both trees have (ingest, create_batch, start_pre_deploy), so the same
script drives the code before and after issue 10. Prints one JSON line.
"""

import argparse
import json
import os
import sys
import time


def seed(batches: list[tuple[str, int]]) -> dict:
    from django.contrib.auth import get_user_model

    from builds.notifications import AppImage, BuildNotification
    from releases.services import create_batch, ingest_build_notification
    from releases.services.batches import AppChoice

    apps = [f"app{i:04d}" for i in range(sum(size for _, size in batches))]
    for number, start in enumerate(range(0, len(apps), 200), start=1):
        ingest_build_notification(
            notification=BuildNotification(
                number=number,
                status="success",
                apps=tuple(AppImage(name, "v1") for name in apps[start : start + 200]),
                repo="org/bench",
            )
        )
    user = get_user_model().objects.create_user("bench", is_staff=True, is_superuser=True)
    made, offset = {}, 0
    for name, size in batches:
        chosen = [AppChoice(name) for name in apps[offset : offset + size]]
        made[name] = create_batch(name=name, apps=chosen, user=user).batch.pk
        offset += size
    return {"batches": made}


def start(batch_id: int) -> dict:
    from django.contrib.auth import get_user_model

    from releases.services import start_pre_deploy

    user = get_user_model().objects.get(username="bench")
    began = time.time()
    start_pre_deploy(batch_id=batch_id, user=user)
    return {"began": began, "committed": time.time()}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--batch", action="append", required=True, metavar="NAME:APPS")
    starting = commands.add_parser("start")
    starting.add_argument("batch_id", type=int)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()
    if args.command == "seed":
        batches = [(name, int(size)) for name, size in (b.split(":") for b in args.batch)]
        result = seed(batches)
    else:
        result = start(args.batch_id)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
