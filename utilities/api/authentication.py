"""How API callers prove who they are: a token (`Bearer` or DRF's `Token`), or a session."""

from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from ..auth import users_with_permissions


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token, sent as `Authorization: Bearer <token>` (what Drone and curl users expect)
    or `Authorization: Token <token>` (DRF's habit). Tokens come from `drf_create_token`."""

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) == 1 and parts[0].lower() not in self.keywords:
            # A bare token, the commonest mistake: say how to send it rather than "no
            # credentials". Other schemes (a proxy's Basic) are left to the other methods.
            raise AuthenticationFailed(_("Send the token as 'Authorization: Bearer <token>'."))
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                _(
                    "Invalid Authorization header: send the token as 'Authorization: Bearer <token>'."
                )
            )
        try:
            token = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed(_("Invalid token: it must be ASCII.")) from None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, key: str):
        """The token's user with their permissions, in one query on every request (nothing is
        kept: a deleted token or a revoked permission is refused by the very next request)."""
        if connection.vendor != "postgresql":
            # The one-query read uses PostgreSQL arrays; the demo's SQLite reads it DRF's way.
            return super().authenticate_credentials(key)
        found = users_with_permissions(
            joins=f"JOIN {connection.ops.quote_name(Token._meta.db_table)} t ON t.user_id = u.id",
            where="t.key = %s",
            params=[key],
            columns="t.created",
        )
        if not found:
            raise AuthenticationFailed(_("Invalid token."))
        user, created = found[0]
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        token = Token(key=key, user=user, created=created)
        token._state.adding, token._state.db = False, connection.alias
        return user, token

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
