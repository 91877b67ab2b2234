"""Deployments as Kubernetes `batch/v1` Jobs. The only module that imports `kubernetes`."""

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from deployments.metrics import job_operations
from deployments.models import Deployment

from .base import Executor, JobState, JobStatus, PermanentJobError, RunningJob, job_env
from .informer import Expired, JobInformer, Key, WatchEvent

logger = logging.getLogger(__name__)

DEPLOYMENT_LABEL = "release-train.io/deployment-id"
# Every Job we create carries it; lists and watches ask for nothing else.
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=release-train"
CLUSTER = "cluster"
# A Job the watch has not shown within this long after its launch is read by itself.
UNSEEN_GRACE_SECONDS = 30.0
# Answers to a create that retrying cannot change: the spec or the namespace is wrong.
PERMANENT_CREATE_STATUSES = {400, 403, 404, 422}


class KubernetesExecutor(Executor):
    """One Job per deployment, named after the deployment so a repeated create is a 409.

    `configuration` lets a caller point the client elsewhere; by default the service account
    is used inside a pod and the kubeconfig outside one.
    """

    def __init__(self, configuration: client.Configuration | None = None):
        self._configuration = configuration
        self._api: client.BatchV1Api | None = None
        self._lock = threading.Lock()
        # Informers by scope (a namespace, or CLUSTER), once `watch` was called.
        self._informers: dict[str, JobInformer] = {}
        self._listeners: list[tuple[Callable[[], None], threading.Event]] = []
        self._watch_stop: threading.Event | None = None

    # --- configuration ---

    def validate(self) -> None:
        super().validate()
        if not settings.DEPLOY_JOB_IMAGE:
            raise ImproperlyConfigured(
                "DEPLOY_JOB_IMAGE is required with DEPLOY_EXECUTOR=kubernetes: the image each "
                "deployment Job runs (it may name {app}, {image_tag} and {environment})."
            )
        try:
            settings.DEPLOY_JOB_IMAGE.format(app="a", image_tag="t", environment="pre")
        except (KeyError, IndexError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"DEPLOY_JOB_IMAGE={settings.DEPLOY_JOB_IMAGE!r} may only name {{app}}, "
                f"{{image_tag}} and {{environment}}: {exc!r}"
            ) from None
        for name, least in (
            ("DEPLOY_JOB_BACKOFF_LIMIT", 0),
            ("DEPLOY_JOB_ACTIVE_DEADLINE_SECONDS", 1),
            ("DEPLOY_JOB_TTL_SECONDS", 1),
        ):
            value = getattr(settings, name)
            if not isinstance(value, int) or value < least:
                raise ImproperlyConfigured(f"{name}={value!r} must be an integer >= {least}.")
        if settings.DEPLOY_KUBERNETES_WATCH_SCOPE not in ("namespaces", CLUSTER):
            raise ImproperlyConfigured(
                "DEPLOY_KUBERNETES_WATCH_SCOPE must be 'namespaces' or 'cluster'."
            )
        if settings.DEPLOY_KUBERNETES_WATCH_SECONDS < 1:
            raise ImproperlyConfigured("DEPLOY_KUBERNETES_WATCH_SECONDS must be at least 1.")
        if settings.DEPLOY_KUBERNETES_TIMEOUT <= 0:
            raise ImproperlyConfigured("DEPLOY_KUBERNETES_TIMEOUT must be positive (seconds).")
        if settings.DEPLOY_RECONCILER_LEASE_SECONDS < 3 * settings.DEPLOY_KUBERNETES_TIMEOUT:
            # A launch may take two calls (create, then a read after a 409) and must end
            # before another reconciler may take the row over.
            raise ImproperlyConfigured(
                "DEPLOY_RECONCILER_LEASE_SECONDS must be at least 3 x DEPLOY_KUBERNETES_TIMEOUT."
            )
        try:
            self._batch_api()
        except (ConfigException, OSError) as exc:
            raise ImproperlyConfigured(
                "Cannot configure the Kubernetes client: no in-cluster service account and no "
                f"usable kubeconfig (DEPLOY_KUBECONFIG, $KUBECONFIG, ~/.kube/config): {exc}"
            ) from None

    def _batch_api(self) -> client.BatchV1Api:
        with self._lock:
            if self._api is None:
                self._api = client.BatchV1Api(client.ApiClient(self._load_configuration()))
            return self._api

    def _load_configuration(self) -> client.Configuration:
        if self._configuration is not None:
            return self._configuration
        configuration = client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=settings.DEPLOY_KUBECONFIG or None,
                context=settings.DEPLOY_KUBE_CONTEXT or None,
                client_configuration=configuration,
                persist_config=False,
            )
        # The reconciler retries on its next tick; a hidden retry here would only stall it.
        configuration.retries = 0
        # A connection for each launch in flight and each watch, kept for reuse.
        configuration.connection_pool_maxsize = max(
            configuration.connection_pool_maxsize, settings.DEPLOY_RECONCILER_LAUNCH_WORKERS + 8
        )
        return configuration

    # --- the Job ---

    def job_manifest(self, deployment: Deployment) -> client.V1Job:
        """The Job of a deployment: settings, overridden by the deployment's own config."""
        app = deployment.release_app.application.name
        cfg = deployment.config or {}
        image_template = cfg.get("image") or settings.DEPLOY_JOB_IMAGE
        command = cfg.get("command", settings.DEPLOY_JOB_COMMAND)
        if not isinstance(image_template, str) or not image_template:
            raise PermanentJobError("No Job image: set DEPLOY_JOB_IMAGE or deploy_config image.")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise PermanentJobError("deploy_config command must be a list of strings.")
        try:
            image = image_template.format(
                app=app, image_tag=deployment.image_tag, environment=deployment.environment
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise PermanentJobError(f"Bad image template {image_template!r}: {exc!r}") from None

        labels = {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/managed-by": "release-train",
            "release-train.io/environment": deployment.environment,
            DEPLOYMENT_LABEL: str(deployment.pk),
        }
        env = job_env(deployment)
        container = client.V1Container(
            name="deploy",
            image=image,
            command=command or None,
            env=[client.V1EnvVar(name=k, value=v) for k, v in env.items()],
        )
        pod_spec = client.V1PodSpec(
            restart_policy="Never",
            containers=[container],
            service_account_name=settings.DEPLOY_JOB_SERVICE_ACCOUNT or None,
        )
        return client.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=client.V1ObjectMeta(
                name=deployment.job_name,
                namespace=deployment.job_namespace,
                labels=labels,
                # Tags may be longer than a label value allows.
                annotations={"release-train.io/image-tag": deployment.image_tag},
            ),
            spec=client.V1JobSpec(
                backoff_limit=settings.DEPLOY_JOB_BACKOFF_LIMIT,
                active_deadline_seconds=settings.DEPLOY_JOB_ACTIVE_DEADLINE_SECONDS,
                ttl_seconds_after_finished=settings.DEPLOY_JOB_TTL_SECONDS,
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=pod_spec
                ),
            ),
        )

    def launch(self, deployment: Deployment) -> None:
        manifest = self.job_manifest(deployment)
        api = self._batch_api()
        try:
            api.create_namespaced_job(
                namespace=deployment.job_namespace,
                body=manifest,
                _request_timeout=settings.DEPLOY_KUBERNETES_TIMEOUT,
                # The answer is not needed: skip making client objects of it.
                _preload_content=False,
            ).read()
        except ApiException as exc:
            if exc.status == 409:
                # Created by an earlier attempt whose answer was lost (a crash, a timeout).
                self._check_owner(deployment)
                return
            if exc.status in PERMANENT_CREATE_STATUSES:
                raise PermanentJobError(
                    f"Kubernetes refused Job {deployment.job_namespace}/{deployment.job_name}: "
                    f"{exc.status} {_reason(exc)}"
                ) from None
            raise

    def _check_owner(self, deployment: Deployment) -> None:
        """A name clash with another installation's Job must not pass for our own launch."""
        job = self._batch_api().read_namespaced_job(
            name=deployment.job_name,
            namespace=deployment.job_namespace,
            _request_timeout=settings.DEPLOY_KUBERNETES_TIMEOUT,
        )
        owner = ((job.metadata and job.metadata.labels) or {}).get(DEPLOYMENT_LABEL)
        if owner != str(deployment.pk):
            raise PermanentJobError(
                f"Job {deployment.job_namespace}/{deployment.job_name} exists but belongs to "
                f"deployment {owner!r}; check DEPLOY_JOB_NAME_PREFIX."
            )

    def poll(self, deployment: Deployment | RunningJob) -> JobStatus:
        try:
            # The Job itself carries its status; the `jobs/status` subresource would need
            # one more RBAC rule for nothing more.
            job = self._batch_api().read_namespaced_job(
                name=deployment.job_name,
                namespace=deployment.job_namespace,
                _request_timeout=settings.DEPLOY_KUBERNETES_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return _missing(deployment.job_namespace, deployment.job_name)
            raise
        return job_status(job)

    # --- following Jobs: list + watch ---

    def watch(self, *, on_change: Callable[[], None], stop: threading.Event) -> None:
        """Start informers for the configured namespaces (or the whole cluster); those of
        per-application namespaces start when a deployment there is first looked at."""
        with self._lock:
            self._listeners.append((on_change, stop))
            if self._watch_stop is not None:
                return
            self._watch_stop = stop
        if settings.DEPLOY_KUBERNETES_WATCH_SCOPE == CLUSTER:
            self._informer(CLUSTER)
        else:
            for namespace in sorted(set(settings.DEPLOY_NAMESPACES.values())):
                self._informer(namespace)

    def synced(self) -> bool:
        """Whether it is watching and every informer started so far has read its first list."""
        with self._lock:
            informers = list(self._informers.values())
        return bool(informers) and all(informer.synced.is_set() for informer in informers)

    def existing_jobs(self) -> list[tuple[str, str]]:
        with self._lock:
            informers = [i for i in self._informers.values() if i.synced.is_set()]
        return [key for informer in informers for key in informer.existing()]

    def job_states(self, deployments: Iterable[RunningJob]) -> dict[int, JobStatus]:
        """From the informers' caches; without a synced informer (not watching: `--once`, or
        one that is starting), from one list per namespace. A Job the watch has not shown yet
        was most likely created a moment ago: it counts as running for a grace period, and
        is read one by one only after that (a watch that missed it, or a Job long gone)."""
        by_namespace: dict[str, list[RunningJob]] = {}
        for deployment in deployments:
            by_namespace.setdefault(deployment.job_namespace, []).append(deployment)
        states = {}
        unseen_since = timezone.now() - timedelta(seconds=UNSEEN_GRACE_SECONDS)
        for namespace, group in by_namespace.items():
            known, watched = self._known(namespace)
            if known is None:
                continue  # looked at again next time; never a request per Job instead
            for deployment in group:
                status = known(deployment.job_name)
                recent = deployment.started_at and deployment.started_at > unseen_since
                if status is None and watched and recent:
                    status = JobStatus(JobState.RUNNING)
                if status is None:
                    status = self._read_status(deployment)
                if status is not None:
                    states[deployment.pk] = status
        return states

    def _known(self, namespace: str) -> tuple[Callable[[str], JobStatus | None] | None, bool]:
        """A lookup of this namespace's Jobs by name (None if they cannot be listed now), and
        whether it comes from a watch rather than a list made just now."""
        informer = self._informer(namespace)
        if informer is not None and informer.synced.is_set():
            return (lambda name: informer.get((namespace, name))), True
        try:
            states, _ = self._list(namespace)
        except Exception as exc:
            job_operations.labels(op="list", result="error").inc()
            logger.warning("job_list_failed", extra={"namespace": namespace, "error": repr(exc)})
            return None, False
        return (lambda name: states.get((namespace, name))), False

    def _read_status(self, deployment: RunningJob) -> JobStatus | None:
        try:
            status = self.poll(deployment)
        except Exception as exc:
            job_operations.labels(op="poll", result="error").inc()
            logger.warning(
                "job_poll_failed",
                extra={"deployment_id": deployment.pk, "error": repr(exc), "retry": True},
            )
            return None
        job_operations.labels(op="poll", result=status.state.value).inc()
        return status

    def _informer(self, namespace: str) -> JobInformer | None:
        """The informer that covers `namespace` (started on first use), if watching."""
        with self._lock:
            if self._watch_stop is None:
                return None
            scope = CLUSTER if settings.DEPLOY_KUBERNETES_WATCH_SCOPE == CLUSTER else namespace
            informer = self._informers.get(scope)
            if informer is None:
                informer = self._informers[scope] = JobInformer(
                    scope=scope,
                    list_jobs=lambda: self._list(scope),
                    watch_jobs=lambda version, seconds: self._watch(scope, version, seconds),
                    on_change=self._changed,
                    stop=self._watch_stop,
                    watch_seconds=settings.DEPLOY_KUBERNETES_WATCH_SECONDS,
                    resync_seconds=settings.DEPLOY_KUBERNETES_RESYNC_SECONDS,
                ).start()
            return informer

    def _changed(self) -> None:
        with self._lock:
            listeners = [f for f, stop in self._listeners if not stop.is_set()]
        for on_change in listeners:
            on_change()

    def _list_call(self, scope: str) -> tuple[Callable, dict]:
        api = self._batch_api()
        if scope == CLUSTER:
            return api.list_job_for_all_namespaces, {}
        return api.list_namespaced_job, {"namespace": scope}

    def _list(self, scope: str) -> tuple[dict[Key, JobStatus], str]:
        """Our Jobs in `scope` and the list's resourceVersion, page by page (`limit` and
        `continue`), so a process following thousands of Jobs holds one page of them as JSON at
        a time, never the whole list; raises Expired when a page's `continue` expired (410:
        the list must start again). Read as JSON: the client's models cost far more than the
        few fields we need."""
        call, kwargs = self._list_call(scope)
        states: dict[Key, JobStatus] = {}
        version, page = "", {}
        while True:
            try:
                response = call(
                    **kwargs,
                    **page,
                    label_selector=MANAGED_SELECTOR,
                    limit=settings.DEPLOY_KUBERNETES_LIST_PAGE_SIZE,
                    _preload_content=False,
                    _request_timeout=settings.DEPLOY_KUBERNETES_TIMEOUT,
                )
            except ApiException as exc:
                if exc.status == 410:
                    raise Expired(exc.reason or "Gone") from None
                raise
            body = json.loads(response.data)
            meta = body.get("metadata") or {}
            for job in body.get("items") or []:
                key = (job["metadata"].get("namespace") or scope, job["metadata"]["name"])
                states[key] = job_status(job)
            # Every page is of the first page's snapshot: watching from its version misses
            # nothing that changed while the rest was read.
            version = version or meta.get("resourceVersion") or ""
            if not meta.get("continue"):
                return states, version
            page = {"_continue": meta["continue"]}

    def _watch(self, scope: str, version: str, seconds: int) -> Iterator[WatchEvent]:
        """Changes from `version` on, for at most `seconds`; raises Expired on 410 Gone.

        The stream is read as JSON lines, as the client's own `Watch` reads it, without making
        client objects of every event (or its retry after a 410, which we do ourselves)."""
        call, kwargs = self._list_call(scope)
        response = call(
            **kwargs,
            label_selector=MANAGED_SELECTOR,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            _preload_content=False,
            # A connection that went silent is dropped a little after the server's own end.
            _request_timeout=(settings.DEPLOY_KUBERNETES_TIMEOUT, seconds + 30),
        )
        try:
            for line in iter_resp_lines(response):
                if not line.strip():
                    continue
                event = json.loads(line)
                raw = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if raw.get("code") == 410:
                        raise Expired(raw.get("message") or "Gone")
                    raise WatchError(f"{raw.get('code')} {raw.get('reason')}: {raw.get('message')}")
                meta = raw.get("metadata") or {}
                if event.get("type") == "BOOKMARK":
                    yield WatchEvent(meta.get("resourceVersion") or "")
                    continue
                key = (meta.get("namespace") or scope, meta.get("name"))
                deleted = event.get("type") == "DELETED"
                status = _missing(*key) if deleted else job_status(raw)
                yield WatchEvent(meta.get("resourceVersion") or "", key, status)
        finally:
            response.close()
            response.release_conn()

    def cancel(self, deployment: Deployment) -> None:
        if not deployment.job_name:
            return
        try:
            # Background: the Job goes at once and its pods after it; the default policy
            # for Jobs would orphan pods that keep running.
            self._batch_api().delete_namespaced_job(
                name=deployment.job_name,
                namespace=deployment.job_namespace,
                propagation_policy="Background",
                body=client.V1DeleteOptions(propagation_policy="Background"),
                _request_timeout=settings.DEPLOY_KUBERNETES_TIMEOUT,
                _preload_content=False,
            ).read()
        except ApiException as exc:
            if exc.status != 404:
                raise


def job_status(job: client.V1Job | dict) -> JobStatus:
    """Finished means a `Complete` or `Failed` condition that is true; anything else runs.
    `job` is a client object or the API's JSON."""
    if not isinstance(job, dict):
        job = client.ApiClient().sanitize_for_serialization(job)
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        finished_at = _timestamp(condition.get("lastTransitionTime"))
        if condition.get("type") == "Complete":
            return JobStatus(JobState.SUCCEEDED, condition.get("message") or "", finished_at)
        if condition.get("type") == "Failed":
            detail = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return JobStatus(
                JobState.FAILED, f"Job failed: {detail or 'no reason given'}", finished_at
            )
    return JobStatus(JobState.RUNNING)


class WatchError(Exception):
    """The API server ended a watch with an error other than 410 Gone."""


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _missing(namespace: str, name: str) -> JobStatus:
    return JobStatus(
        JobState.MISSING,
        f"Job {namespace}/{name} disappeared before it finished (deleted by hand, or removed "
        "by the cluster).",
    )


def _reason(exc: ApiException) -> str:
    """The API's own message when it sent a Status body, else the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
