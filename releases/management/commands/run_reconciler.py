import logging
import signal
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from deployments.executors import get_executor
from releases.reconciler import Reconciler
from utilities.metrics import metrics_registry

logger = logging.getLogger("releases.reconciler")


class Command(BaseCommand):
    help = (
        "Launch pending deployments, follow running Jobs, apply their outcomes and retry Job "
        "deletions. Runs until SIGTERM/SIGINT, woken by new work and changed Jobs, or one tick "
        "with --once. Any number may run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one tick, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            metavar="S",
            help="Longest pause between ticks when nothing wakes the reconciler "
            "(default: DEPLOY_RECONCILER_INTERVAL).",
        )

    def handle(self, *args, once: bool, interval: float | None, **options):
        interval = settings.DEPLOY_RECONCILER_INTERVAL if interval is None else interval
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        executor = get_executor()
        try:
            executor.validate()
        except ImproperlyConfigured as exc:
            raise CommandError(f"Deploy settings are not usable: {exc}") from None

        reconciler = Reconciler(executor=executor)
        if once:
            self.stdout.write(str(reconciler.tick()))
            reconciler.close()
            return

        if settings.DEPLOY_RECONCILER_METRICS_PORT:
            _serve_metrics(
                settings.DEPLOY_RECONCILER_METRICS_ADDR, settings.DEPLOY_RECONCILER_METRICS_PORT
            )
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda signum, frame: reconciler.request_stop())
        logger.info(
            "reconciler_started",
            extra={
                "reconciler": reconciler.name,
                "executor": settings.DEPLOY_EXECUTOR,
                "interval": interval,
            },
        )
        reconciler.run(interval=interval)
        logger.info("reconciler_stopped", extra={"reconciler": reconciler.name})


def _serve_metrics(addr: str, port: int) -> None:
    """Prometheus text on http://ADDR:PORT/, in a daemon thread: this process's counters, or
    those of every process sharing PROMETHEUS_MULTIPROC_DIR."""
    start_http_server(port, addr=addr, registry=metrics_registry())
    logger.info("reconciler_metrics_serving", extra={"addr": addr, "port": port})
