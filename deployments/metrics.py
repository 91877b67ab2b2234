from prometheus_client import Counter, Gauge, Histogram

job_operations = Counter(
    "releasetrain_job_operations_total",
    "Operations on deployment Jobs, by operation (launch, poll, cancel) and result (ok, error).",
    ["op", "result"],
)

outcome_delay = Histogram(
    "releasetrain_job_outcome_delay_seconds",
    "Time from a Job finishing (by the executor's clock) to its outcome being applied.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

# Every reconciler sees the same waiting work: the largest figure of the live processes is it.
work_waiting = Gauge(
    "releasetrain_reconciler_work_waiting",
    "Work ready for the reconcilers at the start of a tick, by kind (launch, outcome, cleanup).",
    ["kind"],
    multiprocess_mode="livemax",
)

watch_restarts = Counter(
    "releasetrain_job_watch_restarts_total",
    "Job watches started again, by reason: expired (410 Gone), error (a failed request or a cut "
    "stream; retried with backoff), resync (the periodic full list).",
    ["reason"],
)

claims_taken_over = Counter(
    "releasetrain_reconciler_claims_taken_over_total",
    "Deployment rows whose claim this reconciler ended because its owner was gone (its "
    "liveness lock free), so their work went on at once instead of after the lease.",
)

claims_lost = Counter(
    "releasetrain_reconciler_claims_lost_total",
    "Deployment rows this reconciler found taken over when it came to write its work (it was "
    "paused past its lease, or seen dead): nothing was written, by work (launch, outcome).",
    ["work"],
)
