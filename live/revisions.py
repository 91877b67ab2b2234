"""The revisions the live admin pages poll (utilities/live.py), and the one call that moves them.

Every workflow that changes something a live region shows ends its transaction with
`live_touch`, naming what it changed. That bumps the revision of each batch and application
concerned (`BatchRevision`, `ApplicationRevision`) and stamps the changed releases (a
deployment's change stamps its release) with their batch's new revision (`ReleaseRevision`), so
a poll reads one number per object of its page to answer 304, and a batch page that showed
revision N re-renders only the rows stamped above N. The apps above are reached by model name
(`apps.get_model`), never imported: this app sits below them.
"""

import functools

from django.apps import apps
from django.db import connection
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from .models import ApplicationRevision, BatchRevision, ReleaseRevision


def live_touch(
    *,
    release_ids=(),
    deployment_ids=(),
    batch_ids=(),
    application_ids=(),
) -> None:
    """Tell the live pages what this transaction changed; its last writes.

    `release_ids`, `deployment_ids`: rows it changed; `batch_ids`: batches whose own fields
    changed, which every row of them shows; `application_ids`: applications whose builds
    changed. The revision rows are locked batches first (in key order), each batch's releases'
    stamps after its row, then applications (in key order); nothing is locked after them, and
    they have no foreign key checks, so these locks never close a cycle with the workflows' own
    (releases/locks.py).
    """
    if not (release_ids or deployment_ids or batch_ids or application_ids):
        return
    if connection.vendor == "postgresql":
        # Every workflow ends with this: one round trip, not four.
        with connection.cursor() as cursor:
            cursor.execute(
                _touch_sql(),
                {
                    "releases": sorted(release_ids),
                    "deployments": sorted(deployment_ids),
                    "whole": sorted(batch_ids),
                    "applications": sorted(application_ids),
                },
            )
        return
    ReleaseApp = apps.get_model("releases", "ReleaseApp")
    Deployment = apps.get_model("deployments", "Deployment")
    stamped, applications = {}, set(application_ids)
    if release_ids:
        stamped.update(ReleaseApp.objects.filter(pk__in=release_ids).values_list("pk", "batch_id"))
    if deployment_ids:
        for release, batch, application in Deployment.objects.filter(
            pk__in=deployment_ids
        ).values_list("release_app_id", "release_app__batch_id", "application_id"):
            stamped[release] = batch
            applications.add(application)
    whole = set(batch_ids)
    if whole:
        # The Applications list shows each app's open batches with their status.
        applications |= set(
            ReleaseApp.objects.filter(batch_id__in=whole).values_list("application_id", flat=True)
        )
    revision = _bump(BatchRevision, sorted(whole | set(stamped.values())), whole=whole)
    _bump(ApplicationRevision, sorted(applications))
    if stamped:
        ReleaseRevision.objects.bulk_create(
            [
                ReleaseRevision(release_id=pk, batch_id=batch, revision=revision[batch])
                for pk, batch in sorted(stamped.items())
            ],
            update_conflicts=True,
            unique_fields=["release"],
            update_fields=["revision"],
        )


@functools.cache
def _touch_sql() -> str:
    """`live_touch` on PostgreSQL in one statement: what the portable code below does in four.

    The batches' revisions are read by the main statement, so they are bumped as it runs, each
    release's stamp after its batch's row; the applications' CTE, which nothing reads, runs
    after the main statement (always to completion), so applications are locked last.
    """
    ReleaseApp = apps.get_model("releases", "ReleaseApp")
    Deployment = apps.get_model("deployments", "Deployment")
    quote = connection.ops.quote_name
    release, deployment = quote(ReleaseApp._meta.db_table), quote(Deployment._meta.db_table)
    batches, stamps = quote(BatchRevision._meta.db_table), quote(ReleaseRevision._meta.db_table)
    applications = quote(ApplicationRevision._meta.db_table)
    return f"""
        WITH stamped AS (
            SELECT r.id AS release_id, r.batch_id FROM {release} r
            WHERE r.id = ANY(%(releases)s::bigint[])
            UNION
            SELECT r.id, r.batch_id FROM {deployment} d JOIN {release} r ON r.id = d.release_app_id
            WHERE d.id = ANY(%(deployments)s::bigint[])
        ), bumped AS (
            INSERT INTO {batches} AS b (batch_id, revision, whole)
            SELECT k.batch_id, 1, CASE WHEN k.batch_id = ANY(%(whole)s::bigint[]) THEN 1 ELSE 0 END
            FROM (
                SELECT batch_id FROM stamped UNION SELECT unnest(%(whole)s::bigint[])
            ) k ORDER BY k.batch_id
            ON CONFLICT (batch_id) DO UPDATE SET revision = b.revision + 1,
                whole = CASE WHEN excluded.whole > 0 THEN b.revision + 1 ELSE b.whole END
            RETURNING b.batch_id, b.revision
        ), applications AS (
            INSERT INTO {applications} AS a (application_id, revision)
            SELECT k.application_id, 1 FROM (
                SELECT unnest(%(applications)s::bigint[]) AS application_id
                UNION
                SELECT d.application_id FROM {deployment} d
                WHERE d.id = ANY(%(deployments)s::bigint[])
                UNION
                -- The Applications list shows each app's open batches with their status.
                SELECT r.application_id FROM {release} r
                WHERE r.batch_id = ANY(%(whole)s::bigint[])
            ) k ORDER BY k.application_id
            ON CONFLICT (application_id) DO UPDATE SET revision = a.revision + 1
        )
        INSERT INTO {stamps} AS s (release_id, batch_id, revision)
        SELECT t.release_id, t.batch_id, n.revision FROM stamped t JOIN bumped n USING (batch_id)
        ORDER BY t.release_id
        ON CONFLICT (release_id) DO UPDATE SET revision = excluded.revision"""


def _bump(model, keys: list[int], *, whole=frozenset()) -> dict[int, int]:
    """Add one to the revision of each key (a row is made at its first change): key → revision."""
    if not keys:
        return {}
    table = connection.ops.quote_name(model._meta.db_table)
    key = connection.ops.quote_name(model._meta.pk.column)
    if model is BatchRevision:
        columns, row = f"{key}, revision, whole", "(%s, 1, %s)"
        params = [p for k in keys for p in (k, 1 if k in whole else 0)]
        update = (
            f"revision = {table}.revision + 1, whole = CASE WHEN excluded.whole > 0"
            f" THEN {table}.revision + 1 ELSE {table}.whole END"
        )
    else:
        columns, row, params = f"{key}, revision", "(%s, 1)", list(keys)
        update = f"revision = {table}.revision + 1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(keys))} "
            f"ON CONFLICT ({key}) DO UPDATE SET {update} RETURNING {key}, revision",
            params,
        )
        return dict(cursor.fetchall())


def batch_revision():
    """The revision of a batch row (a Batch queryset's expression)."""
    return Coalesce(
        Subquery(BatchRevision.objects.filter(batch=OuterRef("pk")).values("revision")), Value(0)
    )


def application_revision():
    """The revision of an application row (an Application queryset's expression)."""
    return Coalesce(
        Subquery(ApplicationRevision.objects.filter(application=OuterRef("pk")).values("revision")),
        Value(0),
    )


def release_revision():
    """The revision of what a release's page shows: the release, its deployments, its batch."""
    return Greatest(
        Coalesce(
            Subquery(ReleaseRevision.objects.filter(release=OuterRef("pk")).values("revision")),
            Value(0),
        ),
        Coalesce(
            Subquery(BatchRevision.objects.filter(batch=OuterRef("batch_id")).values("whole")),
            Value(0),
        ),
    )


def releases_changed_since(*, batch_id: int, revision: int):
    """The ids of the releases of a batch whose row shows something stamped after `revision`
    (a subquery); None when the batch itself changed since, which every row shows."""
    if BatchRevision.objects.filter(batch_id=batch_id, whole__gt=revision).exists():
        return None
    return ReleaseRevision.objects.filter(batch_id=batch_id, revision__gt=revision).values(
        "release_id"
    )
