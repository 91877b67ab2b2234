"""The demo stack's web process, for real: gunicorn with two workers on SQLite, driven over HTTP.

Drone notifies a build, a permitted user switches to it, and /metrics (summed over the workers)
and the JSON logs show it.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")

pytestmark = pytest.mark.timeout(180)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, *, token: str, body=None, request_id: str = ""):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if request_id:
            headers["X-Request-ID"] = request_id
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers

    def text(self, path: str) -> str:
        with urllib.request.urlopen(self.base + path, timeout=15) as response:
            return response.read().decode()


@pytest.fixture
def stack(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEPLOY_EXECUTOR": "local",
        "DEPLOY_LOCAL_STATE_DIR": str(tmp_path / "jobs"),
        "LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = _free_port()
    for args in (["migrate", "--noinput", "-v", "0"], ["seed_demo", "-v", "0"]):
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120
        )
    (tmp_path / "prom").mkdir()
    log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen(
        [
            str(GUNICORN),
            *("--config", "config/gunicorn.py"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "2"),
            "config.wsgi",
        ],
        cwd=ROOT,
        env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        for _ in range(120):
            try:
                if api.text("/readyz"):
                    break
            except OSError:
                assert web.poll() is None, (tmp_path / "web.log").read_text()
                time.sleep(0.25)
        else:
            pytest.fail("gunicorn did not become ready")
        yield api, tmp_path / "web.log"
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
        log.close()


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_notify_then_switch_over_http(stack):
    api, log_path = stack
    drone, alice, bob = "demo-token-drone", "demo-token-alice", "demo-token-bob"

    status, body, _ = api.call(
        "POST",
        "/api/v1/builds/notify",
        token=drone,
        body={
            "build_number": 500,
            "build_status": "success",
            "apps": [{"name": "api", "image_tag": "v1.6.0"}],
            "repo": "acme/shop",
        },
    )
    assert status == 201, body
    [new_tag] = body["new_tags"]
    assert (new_tag["app"], new_tag["image_tag"]) == ("api", "v1.6.0")
    release_id = new_tag["release_ids"][0]

    status, view, _ = api.call("GET", f"/api/v1/releases/{release_id}/status", token=bob)
    assert status == 200
    assert (view["image_tag"], view["latest_image_tag"], view["has_new_tag"]) == (
        "v1.4.1",
        "v1.6.0",
        True,
    )
    assert view["can_switch"] is False
    assert [b["code"] for b in view["switch_blockers"]] == ["permission_denied"]

    switch = f"/api/v1/releases/{release_id}/switch-version"
    assert api.call("POST", switch, token=bob, body={})[0] == 403

    status, result, headers = api.call(
        "POST",
        switch,
        token=alice,
        body={"expected_image_tag": "v1.4.1"},
        request_id="smoke-switch-1",
    )
    assert status == 200, result
    assert (result["changed"], result["previous_image_tag"]) == (True, "v1.4.1")
    assert result["release"]["image_tag"] == "v1.6.0"
    assert result["deployment"]["status"] == "pending"
    assert headers["X-Request-ID"] == "smoke-switch-1"

    status, again, _ = api.call("POST", switch, token=alice, body={})
    assert (status, again["changed"]) == (200, False)

    # Two workers answered these requests; the scrape sums both.
    metrics = api.text("/metrics")
    assert _metric(metrics, 'releasetrain_version_switches_total{result="changed"}') == 1
    assert _metric(metrics, 'releasetrain_version_switches_total{result="unchanged"}') == 1
    assert _metric(metrics, "releasetrain_new_tags_detected_total") == 1
    assert (
        _metric(metrics, 'releasetrain_builds_notified_total{result="created",status="success"}')
        == 1
    )

    log_text = log_path.read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    [switched] = [line for line in lines if line["event"] == "version_switched"]
    assert (switched["from"], switched["to"], switched["user"]) == ("v1.4.1", "v1.6.0", "alice")
    assert switched["request_id"] == "smoke-switch-1"
    assert any(line["event"] == "new_tag_detected" for line in lines)
    for token in (drone, alice, bob):
        assert token not in log_text


def _post_whole_body(base: str, path: str, body: bytes, token: str) -> tuple[int, dict]:
    """POST over a fresh socket, sending every byte of the body before reading the answer, as
    Python's urllib and Drone's webhook step do; in pieces, as over a real network, so the
    server has answered while the client is still sending (on loopback a whole MiB would
    otherwise sit in the kernel's buffers before the server even looks at it)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    piece = 64 * 1024

    def pieces():
        for start in range(0, len(body), piece):
            yield body[start : start + piece]
            time.sleep(0.01)

    try:
        connection.request(
            "POST",
            path,
            body=pieces(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
            },
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_twenty_oversized_bodies_each_get_their_json_413(stack):
    """A body over 1 MiB is refused before it is read; the client, still sending, must get
    the 413 and not a reset. Every endpoint that takes a body, 20 requests in all."""
    api, _ = stack
    oversized = b'{"name": "' + b"x" * (1024 * 1024 + 100 * 1024) + b'"}'  # 1.1 MiB
    paths = [
        "/api/v1/builds/notify",
        "/api/v1/batches/",
        "/api/v1/releases/1/switch-version",
        "/api/v1/batches/1/start-pre-deploy",
        "/api/v1/batches/1/cancel",
    ]

    answers = [
        _post_whole_body(api.base, paths[i % len(paths)], oversized, "demo-token-alice")
        for i in range(20)
    ]

    assert [(status, body["code"]) for status, body in answers] == [(413, "too_large")] * 20
