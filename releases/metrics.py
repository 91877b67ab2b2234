import logging

from django.db import DatabaseError
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

new_tags_detected = Counter(
    "releasetrain_new_tags_detected_total",
    "Releases that learned of a newer image tag of their application.",
)
version_switches = Counter(
    "releasetrain_version_switches_total",
    "Version switch requests, by result (changed, unchanged, rejected).",
    ["result"],
)
switch_rejections = Counter(
    "releasetrain_switch_rejections_total",
    "Version switches refused, by error code.",
    ["code"],
)
stage_rejections = Counter(
    "releasetrain_stage_rejections_total",
    "Stage starts refused, by environment and error code (on_hold, batch_empty, ...).",
    ["environment", "code"],
)


class ActiveHoldsCollector:
    """`releasetrain_holds_active`, counted in the database at scrape time: a hold becomes
    active or ends by the clock, with no event a process could count."""

    def describe(self):
        # Registration asks for the families; only a scrape may touch the database.
        return [self._family()]

    def collect(self):
        from .models import Hold

        try:
            active = Hold.objects.active().count()
        except DatabaseError as exc:
            # The other figures still matter most when the database is in trouble.
            logger.warning("holds_metric_failed", extra={"error": repr(exc)})
            active = None
        yield self._family(active)

    @staticmethod
    def _family(value: int | None = None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "releasetrain_holds_active", "Holds active now (started, not ended, not lifted)."
        )
        if value is not None:
            family.add_metric([], value)
        return family
