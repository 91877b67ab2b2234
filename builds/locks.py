"""Row locks on builds. A build is locked after its applications (applications/locks.py) and
before any release (releases/locks.py), like every level of the one lock order."""

from .models import Build


def build_lock(*, repo: str, number: int) -> Build:
    """A recorded build, locked until the caller's transaction ends: re-sent notifications of
    one build apply one after the other."""
    return Build.objects.select_for_update().get(repo=repo, number=number)
