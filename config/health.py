"""Probes for load balancers and Kubernetes, and the Prometheus scrape endpoint."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any database failure means "not ready", never a 500 page
        return JsonResponse({"status": "unavailable", "database": repr(exc)}, status=503)
    if unapplied:
        return JsonResponse(
            {"status": "unavailable", "unapplied_migrations": len(unapplied)}, status=503
        )
    return JsonResponse({"status": "ok"})


@require_GET
def metrics(request):
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
