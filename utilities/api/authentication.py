"""How API callers prove who they are: a token (`Bearer` or DRF's `Token`), or a session."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token, sent as `Authorization: Bearer <token>` (what Drone and curl users expect)
    or `Authorization: Token <token>` (DRF's habit). Tokens come from `drf_create_token`."""

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            token = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed("Invalid token: it must be ASCII.") from None
        return self.authenticate_credentials(token)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer a missing or bad credential with 401, not 403.
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A DRF token: `Authorization: Bearer <token>` (`Token <token>` works "
            "too). Create one with `python manage.py drf_create_token <username>`.",
        }
