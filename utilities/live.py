"""Live admin pages: the parts of a page that may change refresh in place, cheaply.

A page marks what may change as *regions*: elements with a stable id (`live_region`, or
`@live_display` on an admin display method). The poller (`admin/live.html`, included by
`base_site.html` when the context has `live`) asks the page's live URL every 2 s, sending the ETag
of the regions it shows as `If-None-Match`. The live view renders the same regions again and
answers with `live_response`: 304 and no body when nothing changed; otherwise the regions, which
htmx swaps in by id (out of band), and a new poller carrying the new ETag. Nothing outside a region
is touched, so a form being filled in, a ticked checkbox or an open select survives.
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


def regions_etag(regions) -> str:
    digest = hashlib.sha256("".join(regions).encode()).hexdigest()[:24]
    return f'"{digest}"'


def live_context(url: str, regions) -> dict:
    """What a page's template context needs under the key `live` to start polling `url`."""
    etag = regions_etag(regions)
    return {
        "url": url,
        "etag": etag,
        "seconds": POLL_SECONDS,
        "headers": json.dumps({"If-None-Match": etag}),
    }


def poller(live: dict) -> SafeString:
    return mark_safe(render_to_string("admin/live.html", {"live": live}))


def live_response(request, regions, *, url: str) -> HttpResponse:
    """304 when the regions are what the page shows (its ETag), else them and a new poller."""
    regions = list(regions)
    live = live_context(url, regions)
    if live["etag"] in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse("".join(regions) + poller(live))
    response["ETag"] = live["etag"]
    # The poller sends its own If-None-Match; the browser's cache must not answer for it.
    response["Cache-Control"] = "no-store"
    return response
