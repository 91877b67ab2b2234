"""`{% index_hold_banner %}`: every active hold, live, on the admin's index page."""

from django import template
from django.urls import reverse

from utilities.live import live_context, poller

from ..admin.holds import index_banner

register = template.Library()


@register.simple_tag(takes_context=True)
def index_hold_banner(context) -> str:
    request = context["request"]
    banner, etag = index_banner(request)
    # The index has no other live region, so this poller is the page's only one.
    return banner + poller(live_context(reverse("admin:releases_hold_banner_live"), etag))
