"""The Prometheus registry a scrape reads. Each app registers its own families in its
AppConfig.ready(), so every family is listed from the first scrape, before any event."""

import os

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess


def metrics_registry():
    """The counters of every process sharing PROMETHEUS_MULTIPROC_DIR, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY
