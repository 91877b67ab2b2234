"""The fake API server answers the real `kubernetes` client as the API server would.

Other tests trust it for list, watch and faults, so its own behaviour is pinned here.
"""

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

from kube_fake import FakeKubernetes


@pytest.fixture
def fake():
    server = FakeKubernetes(bookmark_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture
def api(fake):
    configuration = client.Configuration()
    configuration.host = fake.url
    configuration.retries = 0
    return client.BatchV1Api(client.ApiClient(configuration))


def job(name: str, **labels) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels={"managed": "rt", **labels}),
        spec=client.V1JobSpec(
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="c", image="i")]
                )
            )
        ),
    )


def names(items) -> list[str]:
    return [item.metadata.name for item in items]


def test_list_filters_by_label_and_namespace_and_carries_versions(fake, api):
    api.create_namespaced_job("pre", job("a", env="pre"))
    api.create_namespaced_job("pre", job("b", env="pre", canary="yes"))
    api.create_namespaced_job("prod", job("c", env="prod"))
    api.create_namespaced_job("prod", job("x"))

    pre = api.list_namespaced_job("pre", label_selector="managed=rt")
    assert names(pre.items) == ["a", "b"]
    assert int(pre.metadata.resource_version) == fake.resource_version == 4
    assert len({item.metadata.resource_version for item in pre.items}) == 2

    everywhere = api.list_job_for_all_namespaces(label_selector="env in (pre,prod),!canary")
    assert names(everywhere.items) == ["a", "c"]
    assert names(api.list_job_for_all_namespaces(label_selector="env!=pre").items) == ["c", "x"]
    assert names(api.list_job_for_all_namespaces(field_selector="metadata.name=b").items) == ["b"]

    first = api.list_job_for_all_namespaces(limit=3)
    assert names(first.items) == ["a", "b", "c"]
    rest = api.list_job_for_all_namespaces(limit=3, _continue=first.metadata._continue)
    assert names(rest.items) == ["x"]

    with pytest.raises(ApiException) as bad:
        api.list_namespaced_job("pre", label_selector="env in pre")
    assert bad.value.status == 400
    assert fake.count("list") == 7 and fake.count("list", 400) == 1


def test_watch_streams_changes_from_a_version_then_ends_on_its_timeout(fake, api):
    api.create_namespaced_job("pre", job("old"))
    listed = api.list_namespaced_job("pre", label_selector="managed=rt")
    api.create_namespaced_job("pre", job("new"))
    api.create_namespaced_job("pre", job("other", managed="someone-else"))
    fake.finish("pre", "old")
    fake.fail("pre", "new", message="exit 2")
    fake.vanish("pre", "old")

    seen = [
        (event["type"], event["object"].metadata.name)
        for event in watch.Watch().stream(
            api.list_namespaced_job,
            "pre",
            label_selector="managed=rt",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        )
    ]
    assert seen == [("ADDED", "new"), ("MODIFIED", "old"), ("MODIFIED", "new"), ("DELETED", "old")]
    assert fake.count("watch", 200) == 1
    assert fake.open_watches() == 0


def test_a_watch_without_version_starts_with_the_current_jobs_and_gets_live_events(fake, api):
    api.create_namespaced_job("pre", job("a"))
    stream = watch.Watch()
    events = []

    def follow():
        for event in stream.stream(api.list_job_for_all_namespaces, timeout_seconds=5):
            events.append((event["type"], event["raw_object"]["metadata"]["name"]))
            if len(events) == 3:
                stream.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    _until(lambda: fake.open_watches() == 1)
    api.create_namespaced_job("prod", job("b"))
    api.delete_namespaced_job("a", "pre")
    follower.join(timeout=5)
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]


def test_watch_from_an_expired_version_gets_410(fake, api):
    api.create_namespaced_job("pre", job("a"))
    version = api.list_namespaced_job("pre").metadata.resource_version
    api.create_namespaced_job("pre", job("b"))
    fake.expire_history()

    with pytest.raises(ApiException) as gone:
        list(
            watch.Watch().stream(
                api.list_namespaced_job, "pre", resource_version=version, timeout_seconds=1
            )
        )
    assert gone.value.status == 410


def test_the_kept_history_is_bounded():
    fake = FakeKubernetes(history=2).start()
    configuration = client.Configuration()
    configuration.host = fake.url
    api = client.BatchV1Api(client.ApiClient(configuration))
    try:
        for name in "abcd":
            api.create_namespaced_job("pre", job(name))

        def since(version):
            stream = watch.Watch().stream(
                api.list_namespaced_job, "pre", resource_version=version, timeout_seconds=0
            )
            return [event["object"].metadata.name for event in stream]

        assert since("3") == ["d"]
        assert since("2") == ["c", "d"]
        with pytest.raises(ApiException) as gone:
            since("1")
        assert gone.value.status == 410
    finally:
        fake.stop()


def test_cut_watches_drops_the_stream_midway(fake, api):
    failures = []

    def follow():
        try:
            for _ in watch.Watch().stream(api.list_namespaced_job, "pre", timeout_seconds=30):
                pass
        except (ProtocolError, ApiException, OSError) as exc:
            failures.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    _until(lambda: fake.open_watches() == 1)
    assert fake.cut_watches() == 1
    follower.join(timeout=5)
    assert not follower.is_alive()
    assert fake.open_watches() == 0


def test_bookmarks_when_asked(fake, api):
    api.create_namespaced_job("pre", job("a"))
    raw = api.list_namespaced_job(
        "pre",
        watch=True,
        resource_version=str(fake.resource_version),
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        _preload_content=False,
    )
    lines = [line for line in raw.read().decode().splitlines() if line]
    assert lines and all('"BOOKMARK"' in line for line in lines)
    assert '"resourceVersion": "1"' in lines[0]


@pytest.mark.parametrize("op", ["create", "list", "watch", "delete", "read"])
def test_faults_on_every_operation(fake, api, op):
    api.create_namespaced_job("pre", job("a"))
    call = {
        "create": lambda: api.create_namespaced_job("pre", job("b")),
        "list": lambda: api.list_namespaced_job("pre"),
        "watch": lambda: list(
            watch.Watch().stream(api.list_namespaced_job, "pre", timeout_seconds=1)
        ),
        "delete": lambda: api.delete_namespaced_job("a", "pre"),
        "read": lambda: api.read_namespaced_job("a", "pre"),
    }[op]
    fake.inject(op, status=429, retry_after=7)
    fake.inject(op, status=503)
    with pytest.raises(ApiException) as throttled:
        call()
    assert (throttled.value.status, throttled.value.headers["Retry-After"]) == (429, "7")
    with pytest.raises(ApiException) as unavailable:
        call()
    assert unavailable.value.status == 503

    fake.inject(op, delay=0.5)
    late = {
        "create": lambda: api.create_namespaced_job("pre", job("b"), _request_timeout=0.2),
        "list": lambda: api.list_namespaced_job("pre", _request_timeout=0.2),
        "watch": lambda: api.list_namespaced_job(
            "pre", watch=True, _request_timeout=0.2, _preload_content=False
        ),
        "delete": lambda: api.delete_namespaced_job("a", "pre", _request_timeout=0.2),
        "read": lambda: api.read_namespaced_job("a", "pre", _request_timeout=0.2),
    }[op]
    with pytest.raises((ReadTimeoutError, MaxRetryError)):
        late()
    assert fake.count(op, 429) == 1 and fake.count(op, 503) == 1
    call()  # faults used up: served again
    assert fake.snapshot()["total"] == sum(fake.counts.values())


def test_rbac_without_cluster_scope_is_403(api, fake):
    fake.cluster_scope = False
    with pytest.raises(ApiException) as forbidden:
        api.list_job_for_all_namespaces()
    assert forbidden.value.status == 403
    assert api.list_namespaced_job("pre").items == []


def test_a_thousand_jobs_under_concurrent_creates(fake, api):
    def create(start):
        for i in range(start, 1000, 20):
            api.create_namespaced_job("pre", job(f"j{i}"))

    threads = [threading.Thread(target=create, args=(start,)) for start in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(api.list_job_for_all_namespaces(label_selector="managed=rt").items) == 1000
    assert fake.count("create", 201) == 1000 and fake.resource_version == 1000


def _until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
