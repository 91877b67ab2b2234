from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import Executor, JobState, JobStatus, PermanentJobError, RunningJob

SHORT_NAMES = {
    "kubernetes": "deployments.executors.kubernetes.KubernetesExecutor",
    "local": "deployments.executors.local.LocalExecutor",
}


def get_executor() -> Executor:
    return _executor_for(settings.DEPLOY_EXECUTOR)


@cache
def _executor_for(name: str) -> Executor:
    return import_string(SHORT_NAMES.get(name, name))()


@receiver(setting_changed)
def _forget_executor(*, setting: str, **kwargs) -> None:
    # Executors read their settings once; a changed setting (tests) needs a fresh one.
    if setting.startswith("DEPLOY_"):
        _executor_for.cache_clear()


__all__ = ["Executor", "JobState", "JobStatus", "PermanentJobError", "RunningJob", "get_executor"]
