"""A small Kubernetes API server for `batch/v1` Jobs, on loopback, with failure injection.

The real `kubernetes` client talks to it over HTTP, so the tests exercise the request the
client really sends (paths, query parameters, bodies) and the answers it really parses.

What it serves, as the API server does:

- create, read (also `/status`), delete of one Job; list of a namespace's Jobs or of all
  (`/apis/batch/v1/jobs`), with `labelSelector`, `fieldSelector` (metadata.name,
  metadata.namespace), `limit` and `continue`;
- a `resourceVersion` on every object and list, from one counter bumped by every change;
- `watch=true` on either list path: a chunked stream of JSON lines (ADDED, MODIFIED, DELETED,
  BOOKMARK with `allowWatchBookmarks`), from `resourceVersion` (unset or "0": the current
  objects as ADDED first), ended after `timeoutSeconds`; from a version older than the kept
  history the stream carries one ERROR event with a 410 `Expired` Status, as the API server does.

What tests do to it: `finish`/`fail` a Job (the Job controller), `activate` it, `vanish` it
(someone else deletes it), `cut_watches` (a dropped stream), `expire_history` (the next watch
from an old version gets 410), `inject` faults (a status, 429 with Retry-After, a delay) on
create, read, list, watch and delete, and read `counts` of requests per operation.

Thread-safe: one lock guards the state; each watch has its own queue, filled under that lock.
"""

import json
import queue
import re
import select
import socket
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

JOBS_PATH = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?(/status)?$")
ALL_JOBS_PATH = "/apis/batch/v1/jobs"
OPS = ("create", "read", "list", "watch", "delete")
# Without timeoutSeconds the API server ends a watch after 30 to 60 minutes; tests never wait
# that long, and a stopped server cuts every stream anyway.
DEFAULT_WATCH_SECONDS = 1800
_CUT = object()  # queued to a watch: drop the connection


@dataclass
class Fault:
    op: str  # create, read, list, watch, delete
    times: int
    status: int | None = None  # answer with this HTTP status
    delay: float = 0.0  # or answer only after this long (past the client's timeout)
    apply: bool = False  # with a delay: carry the operation out first (the answer is lost)
    retry_after: int | None = None  # with a status (429, 503): the Retry-After header


@dataclass
class Request:
    op: str
    namespace: str | None  # None: all namespaces
    name: str | None
    status: int
    path: str = ""
    query: dict = field(default_factory=dict)
    body: dict | None = None
    at: float = 0.0  # when it was carried out and answered (epoch seconds)


@dataclass
class Response:
    code: int
    body: dict
    headers: dict = field(default_factory=dict)


class BadRequest(Exception):
    pass


@dataclass(eq=False)  # hashed by identity, kept in a set
class _Watch:
    namespace: str | None
    labels: list
    fields: list
    events: queue.Queue = field(default_factory=queue.Queue)

    def wants(self, job: dict) -> bool:
        meta = job["metadata"]
        return (
            self.namespace in (None, meta["namespace"])
            and _matches(self.labels, meta.get("labels") or {})
            and _matches(self.fields, _fields(job))
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping out a timeout is abandoned
    request_queue_size = 1024  # hundreds of concurrent launches connect at once


class FakeKubernetes:
    """State: {(namespace, name): job}. `requests` logs every request and its answer.

    `history` is how many change events are kept for watches that resume from a version;
    `cluster_scope=False` answers 403 to list and watch across all namespaces (RBAC that
    grants only namespaced Roles); `latency` delays every answer (a remote API server).
    """

    def __init__(
        self,
        *,
        create_delay: float = 0.0,
        latency: float = 0.0,
        history: int = 10_000,
        cluster_scope: bool = True,
        bookmark_seconds: float = 5.0,
        port: int = 0,
    ):
        self.jobs: dict[tuple[str, str], dict] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.counts: Counter = Counter()  # {op: requests}, every answer included
        self.statuses: Counter = Counter()  # {(op, status): requests}
        self.create_delay = create_delay
        self.latency = latency
        self.cluster_scope = cluster_scope
        self.bookmark_seconds = bookmark_seconds
        self.log_requests = True  # off: only the counters (long benchmark runs)
        self._lock = threading.RLock()
        self._version = 0
        self._history: deque = deque(maxlen=history)  # (version, type, job)
        self._expired = 0  # watches from below this version get 410
        self._watches: set[_Watch] = set()
        self._server = _Server(("127.0.0.1", port), _handler(self))
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
        self.cut_watches()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def kubeconfig(self, token: str = "test-token") -> dict:
        """A kubeconfig (JSON is YAML) that points the real client here."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
            "current-context": "fake",
        }

    # --- what tests do to the cluster ---

    def inject(self, op: str, *, times: int = 1, **kwargs) -> None:
        if op not in OPS:
            raise ValueError(f"unknown operation {op!r}; one of {OPS}")
        with self._lock:
            self.faults.append(Fault(op=op, times=times, **kwargs))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def finish(self, namespace: str, name: str, *, succeeded: bool = True, message: str = ""):
        """What the Job controller does when the pod ends: a MODIFIED event."""
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
            self._changed("MODIFIED", job)

    def fail(self, namespace: str, name: str, *, message: str = "") -> None:
        self.finish(namespace, name, succeeded=False, message=message)

    def activate(self, namespace: str, name: str) -> None:
        """The pod started: a MODIFIED event that changes nothing the product cares about."""
        with self._lock:
            job = self.jobs[(namespace, name)]
            job["status"] = {"active": 1, "startTime": _now()}
            self._changed("MODIFIED", job)

    def finish_all(self, *, succeeded: bool = True) -> None:
        with self._lock:
            for namespace, name in list(self.jobs):
                if not self.jobs[(namespace, name)]["status"].get("conditions"):
                    self.finish(namespace, name, succeeded=succeeded)

    def running(self) -> list[tuple[str, str]]:
        """(namespace, name) of the Jobs that have not finished, in creation order."""
        with self._lock:
            return [key for key, job in self.jobs.items() if not job["status"].get("conditions")]

    def vanish(self, namespace: str, name: str) -> None:
        """Someone else deleted the Job: a DELETED event."""
        with self._lock:
            job = self.jobs.pop((namespace, name))
            self._changed("DELETED", job)

    def cut_watches(self) -> int:
        """Drop every open watch connection mid-stream; returns how many were cut."""
        with self._lock:
            watches = list(self._watches)
            self._watches.clear()
        for watch in watches:
            watch.events.put(_CUT)
        return len(watches)

    def open_watches(self) -> int:
        with self._lock:
            return len(self._watches)

    def expire_history(self) -> None:
        """Forget the kept events: a watch from any version before now gets 410 Gone."""
        with self._lock:
            self._history.clear()
            self._expired = self._version

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._version

    def created(self) -> list[tuple[str, str]]:
        """(namespace, name) of every create that made a Job."""
        with self._lock:
            return [
                (r.namespace, r.name) for r in self.requests if r.op == "create" and r.status == 201
            ]

    def count(self, op: str, status: int | None = None) -> int:
        with self._lock:
            return self.counts[op] if status is None else self.statuses[(op, status)]

    def snapshot(self) -> Counter:
        """Requests so far per operation (for deltas), `total` included."""
        with self._lock:
            counts = Counter(self.counts)
        counts["total"] = sum(counts.values())
        return counts

    # --- the API ---

    def _take_fault(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.op == op and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, query: dict, body: dict | None):
        """A `Response`, or a `_Watch` plus its first events for the handler to stream."""
        match = JOBS_PATH.match(path)
        if match:
            namespace, name, _ = match.groups()
        elif path == ALL_JOBS_PATH:
            namespace, name = None, None
        else:
            return Response(404, _status(404, "NotFound", f"no route {method} {path}"))
        watching = _flag(query, "watch")
        op = {
            ("POST", False): "create",
            ("GET", True): "read",
            ("GET", False): "watch" if watching else "list",
            ("DELETE", True): "delete",
        }.get((method, name is not None))
        if op is None or (op == "create" and namespace is None):
            return Response(405, _status(405, "MethodNotAllowed", method))
        if op == "create":
            name = (body or {}).get("metadata", {}).get("name")

        request = Request(op, namespace, name, 0, path, query, body)
        if self.latency:
            time.sleep(self.latency)
        if namespace is None and not self.cluster_scope:
            message = f'jobs.batch is forbidden: cannot {op} resource "jobs" at the cluster scope'
            return self._log(request, Response(403, _status(403, "Forbidden", message)))
        fault = self._take_fault(op)
        if fault and fault.status:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            answer = _status(fault.status, "Injected", "injected fault")
            return self._log(request, Response(fault.status, answer, headers))
        if fault and not fault.apply:
            time.sleep(fault.delay)
            return self._log(request, Response(504, _status(504, "Timeout")))
        if op == "create" and self.create_delay:
            time.sleep(self.create_delay)

        try:
            if op in ("list", "watch"):
                labels = _selector(_param(query, "labelSelector"), labels=True)
                fields = _selector(_param(query, "fieldSelector"), labels=False)
            with self._lock:
                if op == "list":
                    answer = self._list(namespace, labels, fields, query)
                elif op == "watch":
                    answer = self._watch(namespace, labels, fields, query)
                else:
                    answer = getattr(self, f"_{op}")(namespace, name, body)
        except BadRequest as exc:
            answer = Response(400, _status(400, "BadRequest", str(exc)))
        # A watch is (watch, first events, seconds, bookmarks), streamed by the handler.
        self._log(request, Response(200, {}) if isinstance(answer, tuple) else answer)
        if fault:
            time.sleep(fault.delay)  # done, but the answer comes late
        return answer

    def _log(self, request: Request, answer: Response) -> Response:
        request.status, request.at = answer.code, time.time()
        with self._lock:
            self.counts[request.op] += 1
            self.statuses[(request.op, answer.code)] += 1
            if self.log_requests:
                self.requests.append(request)
        return answer

    def _changed(self, kind: str, job: dict) -> None:
        """Under the lock: a new version, kept for watches and sent to the open ones."""
        self._version += 1
        job["metadata"]["resourceVersion"] = str(self._version)
        if self._history.maxlen and len(self._history) == self._history.maxlen:
            self._expired = self._history[0][0]
        snapshot = json.loads(json.dumps(job))
        self._history.append((self._version, kind, snapshot))
        for watch in self._watches:
            if watch.wants(snapshot):
                watch.events.put({"type": kind, "object": snapshot})

    def _create(self, namespace, name, body):
        if not name:
            return Response(422, _status(422, "Invalid", "metadata.name: Required value"))
        if (namespace, name) in self.jobs:
            message = f'jobs.batch "{name}" already exists'
            return Response(409, _status(409, "AlreadyExists", message))
        job = json.loads(json.dumps(body))
        job["metadata"].update(
            namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1
        )
        job["status"] = {}
        self.jobs[(namespace, name)] = job
        self._changed("ADDED", job)
        return Response(201, job)

    def _read(self, namespace, name, body):
        job = self.jobs.get((namespace, name))
        if job is None:
            return Response(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
        return Response(200, job)

    def _list(self, namespace, labels, fields, query):
        items = [
            job
            for (ns, _), job in sorted(self.jobs.items())
            if namespace in (None, ns)
            and _matches(labels, job["metadata"].get("labels") or {})
            and _matches(fields, _fields(job))
        ]
        meta = {"resourceVersion": str(self._version)}
        after = _param(query, "continue")
        if after:
            try:
                start = json.loads(after)
            except ValueError:
                raise BadRequest("invalid continue token") from None
            items = [job for job in items if _key(job) > tuple(start)]
        limit = _param(query, "limit")
        if limit and int(limit) < len(items):
            meta["remainingItemCount"] = len(items) - int(limit)
            items = items[: int(limit)]
            meta["continue"] = json.dumps(list(_key(items[-1])))
        return Response(
            200, {"apiVersion": "batch/v1", "kind": "JobList", "metadata": meta, "items": items}
        )

    def _watch(self, namespace, labels, fields, query):
        watch = _Watch(namespace, labels, fields)
        since = _param(query, "resourceVersion")
        seconds = int(_param(query, "timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        bookmarks = _flag(query, "allowWatchBookmarks")
        if since in (None, "", "0"):
            first = [
                {"type": "ADDED", "object": json.loads(json.dumps(job))}
                for job in self.jobs.values()
                if watch.wants(job)
            ]
        else:
            try:
                version = int(since)
            except ValueError:
                raise BadRequest(f"invalid resourceVersion {since!r}") from None
            if version < self._expired:
                message = f"too old resource version: {version} ({self._expired})"
                gone = _status(410, "Expired", message)
                return watch, [{"type": "ERROR", "object": gone}], 0, False
            first = [
                {"type": kind, "object": job}
                for v, kind, job in self._history
                if v > version and watch.wants(job)
            ]
        self._watches.add(watch)
        return watch, first, seconds, bookmarks

    def _delete(self, namespace, name, body):
        job = self.jobs.pop((namespace, name), None)
        if job is None:
            return Response(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
        self._changed("DELETED", job)
        return Response(200, _status(200, "", "deleted", status="Success"))

    def _stream_ended(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _bookmark(self) -> dict:
        with self._lock:
            version = str(self._version)
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": "Job",
                "apiVersion": "batch/v1",
                "metadata": {"resourceVersion": version},
            },
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _key(job: dict) -> tuple[str, str]:
    return job["metadata"]["namespace"], job["metadata"]["name"]


def _fields(job: dict) -> dict:
    return {
        "metadata.name": job["metadata"]["name"],
        "metadata.namespace": job["metadata"]["namespace"],
    }


def _param(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _flag(query: dict, name: str) -> bool:
    return (_param(query, name) or "").lower() in ("true", "1")


SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
EQ_TERM = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)\s*$")
EXISTS_TERM = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")
FIELDS = {"metadata.name", "metadata.namespace"}


def _selector(text: str | None, *, labels: bool) -> list:
    """Terms (key, operator, values) of a label or field selector, as the API server parses them."""
    if not text:
        return []
    terms = []
    for part in re.split(r",(?![^(]*\))", text):
        if match := SET_TERM.match(part):
            key, operator, values = match.groups()
            terms.append((key, operator, {v.strip() for v in values.split(",") if v.strip()}))
        elif match := EQ_TERM.match(part):
            key, operator, value = match.groups()
            terms.append((key, "!=" if operator == "!=" else "=", {value}))
        elif labels and (match := EXISTS_TERM.match(part)):
            bang, key = match.groups()
            terms.append((key, "!exists" if bang else "exists", set()))
        else:
            raise BadRequest(f"unable to parse requirement: {part!r}")
        if not labels and (terms[-1][0] not in FIELDS or terms[-1][1] not in ("=", "!=")):
            raise BadRequest(f'field label not supported: "{terms[-1][0]}"')
    return terms


def _matches(terms: list, values: dict) -> bool:
    for key, operator, wanted in terms:
        value = values.get(key)
        ok = {
            "=": value in wanted,
            "in": value in wanted,
            "!=": value not in wanted,
            "notin": value not in wanted,
            "exists": key in values,
            "!exists": key not in values,
        }[operator]
        if not ok:
            return False
    return True


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
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            answer = cluster.handle(method, url.path, parse_qs(url.query), body)
            if isinstance(answer, tuple):
                self._stream(*answer)
                return
            data = json.dumps(answer.body).encode()
            try:
                self.send_response(answer.code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (an injected timeout)

        def _stream(self, watch: _Watch, first: list, seconds: int, bookmarks: bool) -> None:
            """Chunked JSON lines until the timeout, a cut, or the client leaves."""
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in first:
                    self._chunk(event)
                deadline = time.monotonic() + seconds
                next_bookmark = time.monotonic() + cluster.bookmark_seconds
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        event = watch.events.get(timeout=min(left, 0.25))
                    except queue.Empty:
                        if self._client_left():
                            return
                        if bookmarks and time.monotonic() >= next_bookmark:
                            self._chunk(cluster._bookmark())
                            next_bookmark = time.monotonic() + cluster.bookmark_seconds
                        continue
                    if event is _CUT:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._chunk(event)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
            finally:
                cluster._stream_ended(watch)

        def _chunk(self, event: dict) -> None:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def _client_left(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_DELETE(self):
            self._serve("DELETE")

        def log_message(self, *args):
            pass

    return Handler
