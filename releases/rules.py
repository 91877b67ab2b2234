"""The conditions for switching a version, shared by the switch itself and the status view.

Pure functions over facts the caller has read, so the answer the status endpoint and the admin
give ("can I switch?") is computed by the very code that enforces it.
"""

from dataclasses import dataclass

from utilities.errors import ERRORS

from .choices import WAITING_BATCH_STATUSES

SWITCH_PERMISSION = "releases.switch_version"
DEPLOY_PERMISSION = "releases.deploy_batch"
ADD_BATCH_PERMISSION = "releases.add_batch"


@dataclass(frozen=True)
class Blocker:
    code: str

    @property
    def detail(self) -> str:
        return str(ERRORS[self.code][1])


def permission_blocker(user) -> Blocker | None:
    """Check 1 of the switch."""
    if user is None or not user.has_perm(SWITCH_PERMISSION):
        return Blocker("permission_denied")
    return None


def batch_waiting_blocker(batch_status: str) -> Blocker | None:
    """Check 5 of the switch."""
    if batch_status not in WAITING_BATCH_STATUSES:
        return Blocker("batch_not_waiting")
    return None


def deployment_blocker(deployment_in_progress: bool) -> Blocker | None:
    """Check 6 of the switch."""
    if deployment_in_progress:
        return Blocker("deployment_in_progress")
    return None


def switch_blockers(*, user, batch_status: str, deployment_in_progress: bool) -> list[Blocker]:
    """Why a switch to the latest tag would be refused now, in the switch's own check order."""
    found = [
        permission_blocker(user),
        batch_waiting_blocker(batch_status),
        deployment_blocker(deployment_in_progress),
    ]
    return [b for b in found if b is not None]
