"""A small Kubernetes API server for `batch/v1` Jobs, on loopback, with failure injection.

The real `kubernetes` client talks to it over HTTP, so the tests exercise the request the
client really sends (paths, query parameters, bodies) and the answers it really parses.
"""

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

JOBS_PATH = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?(/status)?$")


@dataclass
class Fault:
    op: str  # create, read, list, delete
    times: int
    status: int | None = None  # answer with this HTTP status
    delay: float = 0.0  # or answer only after this long (past the client's timeout)
    apply: bool = False  # with a delay: carry the operation out first (the answer is lost)


@dataclass
class Request:
    op: str
    namespace: str
    name: str | None
    status: int
    path: str = ""
    query: dict = field(default_factory=dict)
    body: dict | None = None


class FakeKubernetes:
    """State: {(namespace, name): job}. `requests` logs every request and its answer."""

    def __init__(self, *, create_delay: float = 0.0):
        self.jobs: dict[tuple[str, str], dict] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.create_delay = create_delay
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler sleeping out a timeout is abandoned
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeKubernetes":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- what tests do to the cluster ---

    def inject(self, op: str, *, times: int = 1, **kwargs) -> None:
        with self._lock:
            self.faults.append(Fault(op=op, times=times, **kwargs))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def finish(self, namespace: str, name: str, *, succeeded: bool = True, message: str = ""):
        """What the Job controller does when the pod ends."""
        with self._lock:
            job = self.jobs[(namespace, name)]
            job["status"] = {
                "conditions": [
                    {
                        "type": "Complete" if succeeded else "Failed",
                        "status": "True",
                        "reason": "" if succeeded else "BackoffLimitExceeded",
                        "message": message,
                    }
                ],
                "succeeded" if succeeded else "failed": 1,
            }

    def finish_all(self, *, succeeded: bool = True) -> None:
        for namespace, name in list(self.jobs):
            if not self.jobs[(namespace, name)]["status"].get("conditions"):
                self.finish(namespace, name, succeeded=succeeded)

    def vanish(self, namespace: str, name: str) -> None:
        with self._lock:
            del self.jobs[(namespace, name)]

    def created(self) -> list[tuple[str, str]]:
        """(namespace, name) of every create that made a Job."""
        return [
            (r.namespace, r.name) for r in self.requests if r.op == "create" and r.status == 201
        ]

    def count(self, op: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests if r.op == op and status in (None, r.status))

    # --- the API ---

    def _take_fault(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.op == op and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, query: dict, body: dict | None):
        match = JOBS_PATH.match(path)
        if not match:
            return 404, _status(404, "NotFound", f"no route {method} {path}")
        namespace, name, _ = match.groups()
        op = {
            ("POST", False): "create",
            ("GET", True): "read",
            ("GET", False): "list",
            ("DELETE", True): "delete",
        }.get((method, name is not None))
        if op is None:
            return 405, _status(405, "MethodNotAllowed", method)
        if op == "create":
            name = (body or {}).get("metadata", {}).get("name")

        request = Request(op, namespace, name, 0, path, query, body)
        fault = self._take_fault(op)
        if fault and fault.status:
            return self._log(request, fault.status, _status(fault.status, "Injected"))
        if fault and not fault.apply:
            time.sleep(fault.delay)
            return self._log(request, 504, _status(504, "Timeout"))
        if op == "create" and self.create_delay:
            time.sleep(self.create_delay)

        with self._lock:
            code, answer = getattr(self, f"_{op}")(namespace, name, body)
        self._log(request, code, answer)
        if fault:
            time.sleep(fault.delay)  # done, but the answer comes too late
        return code, answer

    def _log(self, request: Request, code: int, answer: dict):
        request.status = code
        with self._lock:
            self.requests.append(request)
        return code, answer

    def _create(self, namespace, name, body):
        if not name:
            return 422, _status(422, "Invalid", "metadata.name: Required value")
        if (namespace, name) in self.jobs:
            return 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        job = json.loads(json.dumps(body))
        job["metadata"].update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        job["status"] = {}
        self.jobs[(namespace, name)] = job
        return 201, job

    def _read(self, namespace, name, body):
        job = self.jobs.get((namespace, name))
        if job is None:
            return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
        return 200, job

    def _list(self, namespace, name, body):
        items = [job for (ns, _), job in sorted(self.jobs.items()) if ns == namespace]
        return 200, {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items}

    def _delete(self, namespace, name, body):
        if self.jobs.pop((namespace, name), None) is None:
            return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
        return 200, _status(200, "", "deleted", status="Success")


def _status(code: int, reason: str, message: str = "", status: str = "Failure") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": status,
        "reason": reason,
        "message": message or reason,
        "code": code,
    }


def _handler(cluster: FakeKubernetes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            code, answer = cluster.handle(method, url.path, parse_qs(url.query), body)
            data = json.dumps(answer).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (an injected timeout)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_DELETE(self):
            self._serve("DELETE")

        def log_message(self, *args):
            pass

    return Handler
