from prometheus_client import Counter

job_operations = Counter(
    "releasetrain_job_operations_total",
    "Operations on deployment Jobs, by operation (launch, poll, cancel) and result (ok, error).",
    ["op", "result"],
)
