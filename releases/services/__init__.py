"""Every workflow that changes a batch, a release or a deployment.

API views, admin actions and management commands call these and nothing else, so they can
never disagree about what is allowed.
"""

from .backfill import backfill_latest_tags
from .batches import cancel_batch, create_batch, start_pre_deploy, start_prod_deploy
from .detection import ingest_build_notification
from .outcomes import apply_deployment_outcome
from .switch import switch_version

__all__ = [
    "apply_deployment_outcome",
    "backfill_latest_tags",
    "cancel_batch",
    "create_batch",
    "ingest_build_notification",
    "start_pre_deploy",
    "start_prod_deploy",
    "switch_version",
]
