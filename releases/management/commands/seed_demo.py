"""Demo data for `make run`: users, a Drone token, applications, builds and one open batch.

Everything goes through the same workflows Drone and people use (ingestion, batch creation),
and a second run changes nothing. The credentials are public: never run this in production.
"""

import json
import shlex

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token

from applications.models import Application
from builds.models import Build
from builds.notifications import AppImage, BuildNotification
from releases.choices import BatchStatus
from releases.models import Batch
from releases.services import create_batch, ingest_build_notification
from releases.services.batches import AppChoice

REPO = "acme/shop"
BATCH_NAME = "Demo release"
VIEW_PERMISSIONS = [
    "applications.view_application",
    "releases.view_batch",
    "releases.view_releaseapp",
    "builds.view_build",
    "builds.view_buildimage",
    "deployments.view_deployment",
    "releases.view_hold",
]
GROUPS = {
    "Release engineers": [
        *VIEW_PERMISSIONS,
        "releases.add_batch",
        "applications.switch_version",
        "applications.deploy_batch",
        "applications.add_hold",
        "applications.lift_hold",
    ],
    "Viewers": VIEW_PERMISSIONS,
    # A team: it sees everything and switches its own application (TEAM_GRANTS) only.
    "Payments": VIEW_PERMISSIONS,
    "CI": ["builds.notify_build"],
}
# group -> (permission, application): object permissions, for that application only.
TEAM_GRANTS = {"Payments": ("applications.switch_version", "api")}
# username -> (password, token, group, is_staff, is_superuser, what they show)
USERS = {
    "admin": ("admin-demo", None, None, True, True, "superuser"),
    "alice": (
        "alice-demo",
        "demo-token-alice",
        "Release engineers",
        True,
        False,
        "may create batches, switch versions and start stages",
    ),
    "bob": ("bob-demo", "demo-token-bob", "Viewers", True, False, "sees new tags, cannot switch"),
    "carol": (
        "carol-demo",
        "demo-token-carol",
        "Payments",
        True,
        False,
        "team Payments: may switch api only",
    ),
    "drone": (None, "demo-token-drone", "CI", False, False, "Drone's service account"),
}
# Builds before the batch exists, then one after it: the batch sees a pending new tag of api.
BUILDS_BEFORE = [
    (101, "success", {"api": "v1.4.0", "web": "v2.3.0", "worker": "v0.9.0"}),
    (102, "success", {"api": "v1.4.1", "web": "v2.3.1"}),
    (103, "failure", {"worker": "v0.9.1"}),
]
BATCH_TAGS = {"api": "v1.4.1", "web": "v2.3.1", "worker": "v0.9.0"}
BUILDS_AFTER = [(104, "success", {"api": "v1.5.0"})]


class Command(BaseCommand):
    help = "Create the demo users, token, applications, builds and one open batch (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the web server listens, for the URLs and curl commands printed.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even though DEBUG is off (the demo credentials are public).",
        )

    def handle(self, *args, base_url, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: this looks like production, and the demo credentials are public. "
                "Pass --force to seed anyway."
            )
        self._users()
        for number, status, apps in BUILDS_BEFORE:
            self._notify(number, status, apps)
        for group_name, (permission, app_name) in TEAM_GRANTS.items():
            assign_perm(
                permission,
                Group.objects.get(name=group_name),
                Application.objects.get(name=app_name),
            )
        # Any batch of that name, open or not: a demo played through to the end is still the
        # demo's batch, and a second one of the same name would read as a duplicate.
        batch = Batch.objects.filter(name=BATCH_NAME).order_by("-created_at", "-pk").first()
        if batch is None:
            batch = create_batch(
                name=BATCH_NAME,
                apps=[AppChoice(name, tag) for name, tag in BATCH_TAGS.items()],
                user=get_user_model().objects.get(username="alice"),
            ).batch
        for number, status, apps in BUILDS_AFTER:
            self._notify(number, status, apps)
        if options["verbosity"] >= 1:
            self._summary(batch=batch, base_url=base_url.rstrip("/"))

    @transaction.atomic
    def _users(self) -> None:
        User = get_user_model()
        for group_name, perms in GROUPS.items():
            group, _ = Group.objects.get_or_create(name=group_name)
            group.permissions.set([_permission(p) for p in perms])
        for username, (password, token, group, staff, superuser, _) in USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser, user.is_active = staff, superuser, True
            if password is None:
                user.set_unusable_password()
            elif not user.check_password(password):
                user.set_password(password)
            user.save(update_fields=["is_staff", "is_superuser", "is_active", "password"])
            user.groups.set([Group.objects.get(name=group)] if group else [])
            if token:
                Token.objects.filter(user=user).exclude(key=token).delete()
                Token.objects.get_or_create(user=user, key=token)

    def _notify(self, number: int, status: str, apps: dict[str, str]) -> None:
        ingest_build_notification(
            notification=BuildNotification(
                number=number,
                status=status,
                apps=tuple(AppImage(name, tag) for name, tag in apps.items()),
                repo=REPO,
                branch="main",
            )
        )

    def _summary(self, *, batch: Batch, base_url: str) -> None:
        release = batch.releases.select_related("application").filter(has_new_tag=True).first()
        web = batch.releases.filter(application__name="web").first()
        newest = Build.objects.filter(repo=REPO).order_by("-number").first()
        newest_images = ", ".join(
            f"{name} {tag}"
            for name, tag in newest.images.order_by("application__name").values_list(
                "application__name", "image_tag"
            )
        )
        # Two builds after the newest, so the second one's tag visibly replaces the first's.
        sends = [(number, f"v2.4.0-b{number}") for number in (newest.number + 1, newest.number + 2)]
        drone, alice = USERS["drone"][1], USERS["alice"][1]
        lines = [
            "",
            "Release Train demo",
            f"  Admin:     {base_url}/admin/",
            f"  API docs:  {base_url}/api/docs/",
            f"  Metrics:   {base_url}/metrics",
            "",
            "  user    password     API token           role",
        ]
        for username, (password, token, _, _, _, role) in USERS.items():
            lines.append(f"  {username:<7} {password or '-':<12} {token or '-':<19} {role}")
        lines += [
            "",
            f"  Batch #{batch.pk} {batch.name!r} is {batch.status}.",
            f"  Newest build: #{newest.number} of {REPO} ({newest_images}).",
        ]
        if release:
            lines.append(
                f"  Release #{release.pk} ({release.application.name}) runs "
                f"{release.image_tag}; new tag {release.latest_image_tag} is waiting."
            )
        lines += [
            "",
            f"Send a new build, as Drone would: web gets the new tag {sends[0][1]}.",
            *_curl(f"{base_url}/api/v1/builds/notify", drone, _build_body(*sends[0])),
            f"Then a newer one: web's new tag becomes {sends[1][1]}.",
            *_curl(f"{base_url}/api/v1/builds/notify", drone, _build_body(*sends[1])),
        ]
        if web:
            lines += [
                "",
                f"See web's release #{web.pk}: its latest tag, and whether alice may switch now:",
                *_curl(f"{base_url}/api/v1/releases/{web.pk}/status", alice),
            ]
        if release:
            lines += [
                "",
                f"Switch {release.application.name} (release #{release.pk}) to its latest tag, "
                "as alice:",
                *_curl(f"{base_url}/api/v1/releases/{release.pk}/switch-version", alice, "{}"),
            ]
        # A demo played through may have left the batch waiting for prod, or deploying.
        stage = {BatchStatus.PRE_WAITING: "pre", BatchStatus.PROD_WAITING: "prod"}.get(batch.status)
        if stage:
            lines += [
                "",
                f"Roll the batch out to {stage}; the reconciler runs each deployment for "
                "DEMO_DEPLOY_SECONDS (20 s by default):",
                *_curl(f"{base_url}/api/v1/batches/{batch.pk}/start-{stage}-deploy", alice, ""),
            ]
        if stage and web:
            lines += [
                f"Meanwhile a switch is refused (409 batch_not_waiting) until {stage} has finished:",
                *_curl(f"{base_url}/api/v1/releases/{web.pk}/switch-version", alice, "{}"),
            ]
        self.stdout.write("\n".join(lines) + "\n")


def _build_body(number: int, tag: str) -> str:
    return json.dumps(
        {
            "build_number": number,
            "build_status": "success",
            "apps": [{"name": "web", "image_tag": tag}],
            "repo": REPO,
            "branch": "main",
        }
    )


def _curl(url: str, token: str, body: str | None = None) -> list[str]:
    """A curl command, indented; a body (even empty) makes it a POST."""
    lines = [
        f"  curl -sS {'' if body is None else '-X POST '}{url} \\",
        f"    -H 'Authorization: Bearer {token}'",
    ]
    if body:
        lines[-1] += " -H 'Content-Type: application/json' \\"
        lines.append(f"    -d {shlex.quote(body)}")
    return lines


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
