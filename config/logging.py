"""Structured logs: one line per event, its `extra` fields rendered, secrets never.

The workflows log an event name and facts, e.g.
`logger.info("version_switched", extra={"release_id": 7, "from": "v1", "to": "v2"})`.
The formatters here render those facts as JSON lines (production, `LOG_FORMAT=json`) or as
readable `key=value` pairs (development, `LOG_FORMAT=text`), with the request id of the
HTTP request being served, if any.
"""

import contextvars
import datetime
import json
import logging
import re

# The id of the HTTP request this thread is serving (set by config.middleware).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}
# `request` is the HttpRequest Django attaches to its own records: never rendered whole
# (headers carry tokens and cookies); its method and path are rendered instead.
_SKIPPED = {"request", "server_time"}
_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|signature|cookie|api_?key", re.I
)
REDACTED = "[redacted]"


def _clean(key: str, value):
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def record_fields(record: logging.LogRecord) -> dict:
    """The facts of a record: request id, then its `extra` fields, secrets redacted."""
    fields = {}
    request = getattr(record, "request", None)
    # Django logs a request's 4xx/5xx line after the middleware has returned; the request
    # object it attaches still carries the id.
    request_id = (
        getattr(record, "request_id", None)
        or request_id_var.get()
        or getattr(request, "request_id", None)
    )
    if request_id:
        fields["request_id"] = request_id
    if request is not None and hasattr(request, "path"):
        fields["method"] = getattr(request, "method", None)
        fields["path"] = request.path
    for key, value in vars(record).items():
        if key in _RECORD_ATTRS or key in _SKIPPED or key.startswith("_"):
            continue
        fields[key] = _clean(key, value)
    return fields


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on every record, whichever handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or getattr(
                getattr(record, "request", None), "request_id", None
            )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, then the facts."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """`2026-11-27 21:50:01 INFO releases.services.switch version_switched release_id=7 ...`"""

    def format(self, record: logging.LogRecord) -> str:
        head = (
            f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} {record.levelname} "
            f"{record.name} {record.getMessage()}"
        )
        pairs = " ".join(f"{k}={_kv(v)}" for k, v in record_fields(record).items())
        line = f"{head} {pairs}" if pairs else head
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _kv(value) -> str:
    if isinstance(value, str) and value and not re.search(r"[\s\"=]", value):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def logging_config(*, log_format: str = "text", level: str = "INFO") -> dict:
    """The LOGGING setting: everything to stderr, formatted as `log_format` (json or text)."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")
    formatter = JsonFormatter if log_format == "json" else KeyValueFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"structured": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            # Django's own per-request error lines; ours (config.middleware) carry more.
            "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "kubernetes": {"level": "WARNING"},
            "environ": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }
