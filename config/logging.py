"""Structured logs through structlog: one line per event, its fields rendered, secrets never.

The workflows log an event name and facts with the standard library, e.g.
`logger.info("version_switched", extra={"release_id": 7, "from": "v1", "to": "v2"})`; structlog
renders them (and django-structlog's own lines) as JSON (production, `LOG_FORMAT=json`) or as
readable `key=value` pairs (development, `LOG_FORMAT=text`). django-structlog binds the id of
the HTTP request being served into every line of it (config/middleware.py).
"""

import datetime
import json
import logging
import re

import structlog

_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|signature|cookie|api_?key", re.I
)
REDACTED = "[redacted]"
# Django attaches the HttpRequest to its own records; `server_time` is runserver's.
_SKIPPED = {"server_time"}
# Lines no one reads: the request line before the one that says how it ended.
_DROPPED_EVENTS = {"request_started"}


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


def _facts(logger, method_name, event_dict):
    """Level as people write it, the request's method and path instead of the request (its
    headers carry tokens and cookies), the request id of a line Django writes after the request
    (its HttpRequest still carries it), secrets redacted."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict["level"] = record.levelname
        event_dict["logger"] = record.name
    request = event_dict.pop("request", None)
    if request is not None and hasattr(request, "path"):
        event_dict.setdefault("request_id", getattr(request, "request_id", None))
        event_dict.setdefault("method", request.method)
        event_dict.setdefault("path", request.path)
    return {
        key: value if key.startswith("_") or key == "event" else _clean(key, value)
        for key, value in event_dict.items()
        if key not in _SKIPPED and not (key == "request_id" and value is None)
    }


# Probes and scrapes run every few seconds: their lines are DEBUG unless they fail.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")


class QuietProbes(logging.Filter):
    """On django-structlog's request logger: a probe's line is DEBUG unless it failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg if isinstance(record.msg, dict) else {}
        if event.get("path") in QUIET_PATHS and event.get("status", 500) < 500:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_HEAD = ("time", "level", "logger", "event")


def _drop_unread(logger, method_name, event_dict):
    if event_dict.get("event") in _DROPPED_EVENTS:
        raise structlog.DropEvent
    return event_dict


def _text_line(logger, method_name, event_dict) -> str:
    """`2026-11-27 21:50:01 INFO releases.services.switch version_switched release_id=7 ...`"""
    exception = event_dict.pop("exception", None)
    head = " ".join(str(event_dict.pop(key, "")) for key in _HEAD)
    pairs = " ".join(f"{k}={_kv(v)}" for k, v in event_dict.items())
    line = f"{head} {pairs}" if pairs else head
    return f"{line}\n{exception}" if exception else line


def _kv(value) -> str:
    if isinstance(value, str) and value and not re.search(r"[\s\"=]", value):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: JSON objects or text lines, one per event."""
    if log_format == "json":
        stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="time")
        render = structlog.processors.JSONRenderer(default=str, ensure_ascii=False)
    else:
        stamp = structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False, key="time")
        render = _text_line
    return structlog.stdlib.ProcessorFormatter(
        # Lines of the standard library's loggers; structlog's have these from configure().
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.stdlib.ExtraAdder()],
        processors=[
            stamp,
            _facts,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            render,
        ],
    )


def logging_config(*, log_format: str = "text", level: str = "INFO") -> dict:
    """The LOGGING setting: everything to stderr, formatted as `log_format` (json or text).

    Also routes structlog's own loggers (django-structlog's request lines) into the standard
    library, so both kinds of line go through the same handler and formatter."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            _drop_unread,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "log_format": log_format}},
        "filters": {"quiet_probes": {"()": QuietProbes}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            "django_structlog.middlewares.request": {"filters": ["quiet_probes"]},
            # Django's own per-request error lines; django-structlog's carry more.
            "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "kubernetes": {"level": "WARNING"},
            "environ": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }
