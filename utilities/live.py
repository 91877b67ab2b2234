"""Live admin pages: the parts of a page that may change refresh in place, cheaply.

A page marks what may change as *regions*: elements with a stable id (`live_region`, or
`@live_display` on an admin display method). Each region belongs to one object of the page (its
id names it, `region_id`) and shows only data whose every change raises that object's *revision*,
a number the workflows bump in their own transaction (`live.revisions`). The page's ETag is its
scope (who looks, in which language, at which objects) and the revisions of its objects.

The poller (`admin/live.html`, included by `base_site.html` when the context has `live`) asks the
page's live URL every 2 s with that ETag as `If-None-Match`. The live view reads the revisions in
one query and answers 304, rendering nothing, while they are what the page shows; otherwise only
the regions of the objects whose revision moved, which htmx swaps in by id (out of band), and a
new poller carrying the new ETag. Nothing outside a region is touched, so a form being filled in,
a ticked checkbox or an open select survives. Nothing in a region reads the clock: relative times
are written by the browser (`static/live-times.js`) from the absolute time in the markup.
"""

import functools
import hashlib
import json

from django.http import HttpResponse, HttpResponseNotModified
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.http import parse_etags
from django.utils.safestring import SafeString, mark_safe

POLL_SECONDS = 2


def region_id(obj, name: str) -> str:
    return f"live-{obj._meta.model_name}-{obj.pk}-{name}"


def live_region(element_id: str, html, *, tag: str = "span", css_class: str = "") -> SafeString:
    """`html` in an element htmx replaces by id when a poll brings a newer version of it.

    `hx-swap-oob` is inert on the page; in a poll's response it tells htmx where the part goes.
    """
    return format_html(
        '<{} id="{}" class="rt-live {}" hx-swap-oob="true">{}</{}>',
        tag,
        element_id,
        css_class,
        html,
        tag,
    )


def live_display(method):
    """Make an admin display method's output a live region named after the object and method."""

    @functools.wraps(method)
    def display(self, obj):
        return live_region(region_id(obj, method.__name__), method(self, obj))

    return display


def live_scope(*parts) -> str:
    """A short digest of what, besides the revisions, decides a page's regions."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def live_etag(scope: str, revisions) -> str:
    """The ETag of a page showing objects at these revisions (None: the object is gone)."""
    return '"{}.{}"'.format(scope, "-".join("x" if r is None else str(r) for r in revisions))


def live_seen(request, scope: str) -> list[int | None] | None:
    """The revisions the polling page shows, from its If-None-Match; None if it is not this scope's
    (another user's permissions, another language, another list of objects)."""
    for etag in parse_etags(request.headers.get("If-None-Match", "")):
        seen_scope, _, revisions = etag.strip('"').partition(".")
        if seen_scope != scope:
            continue
        try:
            return [None if r == "x" else int(r) for r in revisions.split("-")]
        except ValueError:
            return None
    return None


def live_context(url: str, etag: str) -> dict:
    """What a page's template context needs under the key `live` to start polling `url`."""
    return {
        "url": url,
        "etag": etag,
        "seconds": POLL_SECONDS,
        "headers": json.dumps({"If-None-Match": etag}),
    }


def poller(live: dict) -> SafeString:
    return mark_safe(render_to_string("admin/live.html", {"live": live}))


def live_not_modified(etag: str) -> HttpResponse:
    return _no_store(HttpResponseNotModified(), etag)


def live_response(regions, *, url: str, etag: str) -> HttpResponse:
    """These regions (those that changed) and a new poller carrying the new ETag."""
    return _no_store(HttpResponse("".join(regions) + poller(live_context(url, etag))), etag)


def _no_store(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    # The poller sends its own If-None-Match; the browser's cache must not answer for it.
    response["Cache-Control"] = "no-store"
    return response
