"""A refused request body is read off the connection before the answer goes out.

An endpoint may refuse a request before reading its body (413 on the declared length, 401, 415).
If the server then closes the connection while the client is still sending, the kernel answers
the unread bytes with a reset and the client sees "broken pipe" instead of the JSON refusal.
So what the application left unread is read and discarded first, up to
REQUEST_DRAIN_MAX_BYTES and REQUEST_DRAIN_SECONDS: a bounded cost, so a huge or stalled body
cannot hold a worker.
"""

import time

from django.conf import settings

_PIECE = 64 * 1024


class DrainUnreadBody:
    """WSGI middleware around the Django application."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        response = self.application(environ, start_response)
        # The WSGI server writes the answer only once this returns.
        drain_request_body(environ)
        return response


def drain_request_body(environ) -> int:
    """Reads and discards what is left of the request body, within the bounds; returns how
    many bytes it read."""
    if not _has_body(environ):
        return 0
    stream = environ["wsgi.input"]
    # gunicorn exposes the client socket: a time-out on it stops a sender that stalls.
    sock = environ.get("gunicorn.socket")
    previous_timeout = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + settings.REQUEST_DRAIN_SECONDS
    drained = 0
    try:
        while drained < settings.REQUEST_DRAIN_MAX_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if sock is not None:
                sock.settimeout(remaining)
            piece = stream.read(min(_PIECE, settings.REQUEST_DRAIN_MAX_BYTES - drained))
            if not piece:
                break
            drained += len(piece)
    except Exception:
        pass  # a time-out, a disconnect, a malformed chunk: the answer stands all the same
    finally:
        if sock is not None:
            sock.settimeout(previous_timeout)
    return drained


def _has_body(environ) -> bool:
    # Without a length or chunked coding there is no body, and a server need not mark the end
    # of one it was never told about: reading could wait for bytes that never come.
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return declared > 0 or chunked
