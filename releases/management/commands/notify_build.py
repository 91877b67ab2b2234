"""Send one build notification from the command line: the webhook's code path, without HTTP.

For a notification Drone lost (Drone never retries): ingestion is idempotent, so sending one
again is always safe.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from builds.api.serializers import BuildNotifyResultSerializer
from builds.notifications import BuildNotification, unknown_apps_refuse
from releases.services import ingest_build_notification
from utilities.errors import DomainError


class Command(BaseCommand):
    help = (
        "Record a build notification and detect new tags, exactly as POST /api/v1/builds/notify "
        "does. Give the fields as options, or a JSON body with --file (- for stdin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="A JSON notification body; '-' reads stdin.")
        parser.add_argument("--number", type=int, help="Drone build number (>= 1).")
        parser.add_argument("--status", default="success", help="Drone build status.")
        parser.add_argument(
            "--app",
            action="append",
            default=[],
            metavar="NAME=TAG",
            help="An app the build produced and its image tag; repeat for each app.",
        )
        parser.add_argument("--repo")
        parser.add_argument("--commit")
        parser.add_argument("--branch")
        parser.add_argument("--link")

    def handle(self, *args, **options):
        data = self._body(options)
        try:
            notification = BuildNotification.parse(data)
            unknown_apps_refuse(notification=notification)
            result = ingest_build_notification(notification=notification)
        except DomainError as error:
            body = {"code": error.code, "detail": error.detail, "fields": error.fields}
            raise CommandError(
                json.dumps(body), returncode=2 if error.code == "invalid" else 1
            ) from None
        # The webhook's response body, plus whether the build was new (the webhook's 201).
        body = {**BuildNotifyResultSerializer(result).data, "created": result.created}
        self.stdout.write(json.dumps(body, indent=2))

    def _body(self, options) -> object:
        if options["file"]:
            if options["number"] is not None or options["app"]:
                raise CommandError("Give either --file or --number/--app, not both.")
            try:
                if options["file"] == "-":
                    return json.load(sys.stdin)
                with open(options["file"], encoding="utf-8") as handle:
                    return json.load(handle)
            except (OSError, ValueError) as exc:
                raise CommandError(
                    f"Cannot read a JSON body from {options['file']}: {exc}"
                ) from None
        if options["number"] is None:
            raise CommandError("Give --number and at least one --app NAME=TAG, or --file.")
        apps = []
        for item in options["app"]:
            name, sep, tag = item.partition("=")
            if not sep:
                raise CommandError(f"--app takes NAME=TAG, not {item!r}.")
            apps.append({"name": name, "image_tag": tag})
        body = {"build_number": options["number"], "build_status": options["status"], "apps": apps}
        for key in ("repo", "commit", "branch", "link"):
            if options[key] is not None:
                body[key] = options[key]
        return body
