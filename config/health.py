"""Probes for load balancers and Kubernetes, and the Prometheus scrape endpoint."""

import logging

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from utilities.metrics import metrics_registry

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any database failure means "not ready", never a 500 page
        # The reason goes to the log only: it names the database host and user.
        logger.warning("readiness_failed", extra={"error": repr(exc)})
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    if unapplied:
        return JsonResponse(
            {"status": "unavailable", "unapplied_migrations": len(unapplied)}, status=503
        )
    return JsonResponse({"status": "ok"})


@require_GET
def metrics(request):
    """Every counter of this host's processes.

    Under gunicorn each worker counts on its own; with `PROMETHEUS_MULTIPROC_DIR` set (before
    any process starts) they write to files there, and the scrape sums them, whichever worker
    answers. Without it (runserver, tests) the process's own registry is the whole truth.
    """
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
