from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Executor, JobState, JobStatus

SHORT_NAMES = {
    "kubernetes": "deployments.executors.kubernetes.KubernetesExecutor",
    "local": "deployments.executors.local.LocalExecutor",
}


def get_executor() -> Executor:
    return _executor_for(settings.DEPLOY_EXECUTOR)


@cache
def _executor_for(name: str) -> Executor:
    return import_string(SHORT_NAMES.get(name, name))()


__all__ = ["Executor", "JobState", "JobStatus", "get_executor"]
