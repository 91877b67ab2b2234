from prometheus_client import Counter

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
