"""Recompute the latest tag of every release in an open batch from the recorded builds."""

from django.core.management.base import BaseCommand, CommandError

from releases.models import Batch
from releases.services import backfill_latest_tags
from releases.services.backfill import DEFAULT_CHUNK_SIZE
from utilities.progress import Progress


class Command(BaseCommand):
    help = (
        "Recompute latest_image_tag / latest_build of releases in open batches from build "
        "history (each app's latest successful build: within a repo the highest number, "
        "across repos the most recently successful). Idempotent; safe while the web server runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, help="Only the releases of this batch.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would change; write nothing."
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help="Releases per transaction (default %(default)s).",
        )

    def handle(self, *args, batch=None, dry_run=False, chunk_size=DEFAULT_CHUNK_SIZE, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if batch is not None and not Batch.objects.filter(pk=batch).exists():
            raise CommandError(f"Batch {batch} does not exist.")
        # A bar on a terminal, a line per chunk otherwise (both on stderr).
        with Progress(
            self.stderr, verb="examined", noun="releases", enabled=options["verbosity"] >= 1
        ) as progress:
            result = backfill_latest_tags(
                batch_id=batch, dry_run=dry_run, chunk_size=chunk_size, progress=progress
            )
        verb = "would change" if dry_run else "changed"
        for change in result.changes:
            self.stdout.write(
                f"release {change.release_id} (batch {change.batch_id}, {change.app}): "
                f"latest {change.from_image_tag or '-'} -> {change.to_image_tag} ({verb})"
            )
        summary = f"{len(result.changes)} of {result.examined} releases {verb}."
        if dry_run:
            summary += " Dry run: nothing was written."
        self.stdout.write(self.style.SUCCESS(summary))
