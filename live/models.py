"""The revisions the live admin pages poll (utilities/live.py); `live.revisions` moves them.

A bottom app, so that every app whose workflows change what a page shows (releases/,
deployments/) bumps them in its own transaction without importing an app above it. They are
the last writes of those transactions, so their foreign keys have no database constraint: its
check would lock the batch row (FOR KEY SHARE) after the workflow's other locks, out of order.
"""

from django.db import models


class BatchRevision(models.Model):
    """How many changes the live pages of a batch have seen.

    The row lock a bump takes is held to commit, so one batch's revisions are handed out in commit
    order: a poll that read revision N has seen every change stamped N or lower."""

    batch = models.OneToOneField(
        "releases.Batch",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    revision = models.BigIntegerField(default=0)
    # The revision of the batch's own last change (its status), which every row of it shows.
    whole = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"batch {self.batch_id} at {self.revision}"


class ReleaseRevision(models.Model):
    """The revision of its batch at the last change of a release or its deployments."""

    release = models.OneToOneField(
        "releases.ReleaseApp",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    batch = models.ForeignKey(
        "releases.Batch",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    revision = models.BigIntegerField(default=0)

    class Meta:
        # A batch page's poll after a change: the rows stamped after what it shows.
        indexes = [models.Index(fields=["batch", "revision"], name="release_revision_batch_idx")]

    def __str__(self) -> str:
        return f"release {self.release_id} at {self.revision}"


class ApplicationRevision(models.Model):
    """How many changes an application's row on the Applications list and its page have seen."""

    application = models.OneToOneField(
        "applications.Application",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    revision = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"application {self.application_id} at {self.revision}"
