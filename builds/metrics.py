from prometheus_client import Counter

builds_notified = Counter(
    "releasetrain_builds_notified_total",
    "Build notifications received, by build status and result (created, updated, duplicate, "
    "stale, rejected).",
    ["status", "result"],
)
