"""What makes a build notification acceptable before it is parsed: its size and its sender.

Drone's `plugins/webhook` step signs the raw body with `signature_secret` and sends
`X-Signature-256: sha256=<hex HMAC-SHA256>`. When `BUILDS_WEBHOOK_SECRET` is set such a request
needs no token; a signature that does not match is refused outright, whatever else it carries.
"""

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from utilities.api.exceptions import PayloadTooLarge

SIGNATURE_HEADER = "X-Signature-256"
SIGNED = "webhook-signature"  # request.auth of a correctly signed request
NOTIFY_PERMISSION = "builds.notify_build"


def webhook_body(request) -> bytes:
    """The raw body, refused with 413 when over BUILDS_WEBHOOK_MAX_BYTES.

    The declared length is checked before anything is read, so Django never gets to raise its
    own RequestDataTooBig; the length read is checked too, in case a front end lets a request
    through without a truthful Content-Length.
    """
    limit = settings.BUILDS_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(_("The body is over %(limit)s bytes.") % {"limit": limit})
    body = request.body
    if len(body) > limit:
        raise PayloadTooLarge(_("The body is over %(limit)s bytes.") % {"limit": limit})
    return body


def signature_for(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSignatureAuthentication(BaseAuthentication):
    """Accepts a request whose body is signed with BUILDS_WEBHOOK_SECRET.

    Without the header it steps aside for token authentication; with the header but no secret
    configured, the request is refused (a credential that cannot be checked never passes).
    """

    def authenticate(self, request):
        secret = settings.BUILDS_WEBHOOK_SECRET
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return None
        if not secret:
            # Every credential presented must hold: one that cannot be checked is refused.
            raise AuthenticationFailed(
                _("%(header)s was sent, but no webhook secret is configured here.")
                % {"header": SIGNATURE_HEADER}
            )
        expected = signature_for(webhook_body(request), secret)
        # Hex digits are case-insensitive; tools differ in which case they print.
        given = signature.strip().lower().encode(errors="replace")
        if not hmac.compare_digest(given, expected.encode()):
            raise AuthenticationFailed(
                _("The %(header)s signature does not match the body.")
                % {"header": SIGNATURE_HEADER}
            )
        return AnonymousUser(), SIGNED

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class CanNotifyBuild(BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.auth is SIGNED:
            return True
        user = request.user
        if user and user.is_authenticated and user.has_perm(NOTIFY_PERMISSION):
            return True
        self.message = gettext("You need the %(permission)s permission.") % {
            "permission": NOTIFY_PERMISSION
        }
        return False


class WebhookSignatureScheme(OpenApiAuthenticationExtension):
    target_class = WebhookSignatureAuthentication
    name = "webhookSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": SIGNATURE_HEADER,
            "description": "`sha256=<hex HMAC-SHA256 of the raw body>` keyed with "
            "BUILDS_WEBHOOK_SECRET (Drone plugins/webhook `signature_secret`); accepted "
            "instead of a token when that secret is set.",
        }
