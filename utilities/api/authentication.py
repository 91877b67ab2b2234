"""How API callers prove who they are: a token (`Bearer` or DRF's `Token`), or a session."""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


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
        """The token's user with their permissions, read in one query on every request.

        Nothing is kept between requests, so a deleted token or a revoked permission is refused
        by the very next request. The permissions fill the caches Django's `ModelBackend` keeps
        on the user object for this request, so `user.has_perm(perm)` asks nothing more, and
        other backends (object permissions) still answer `has_perm(perm, obj)` their own way.
        """
        if connection.vendor != "postgresql":
            # The one-query read uses PostgreSQL arrays; the demo's SQLite reads it DRF's way.
            return super().authenticate_credentials(key)
        with connection.cursor() as cursor:
            cursor.execute(_credentials_sql(), [key])
            row = cursor.fetchone()
        if row is None:
            raise AuthenticationFailed(_("Invalid token."))
        *user_values, created, user_permissions, group_permissions = row
        User = get_user_model()
        user = User.from_db(connection.alias, _user_field_names(), user_values)
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        user._user_perm_cache = set(user_permissions)
        user._group_perm_cache = set(group_permissions)
        user._perm_cache = user._user_perm_cache | user._group_perm_cache
        token = Token(key=key, user=user, created=created)
        token._state.adding, token._state.db = False, connection.alias
        return user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer a missing or bad credential with 401, not 403.
        return 'Bearer realm="api"'


@cache
def _user_field_names() -> list[str]:
    return [f.attname for f in get_user_model()._meta.concrete_fields]


@cache
def _credentials_sql() -> str:
    """Token, user, and the user's own and groups' permissions as "app_label.codename" (the
    form `has_perm` takes), in one statement; built from the models' tables once per process."""
    User = get_user_model()
    quote = connection.ops.quote_name
    user_table, token_table = quote(User._meta.db_table), quote(Token._meta.db_table)
    permission = quote(Permission._meta.db_table)
    content_type = quote(ContentType._meta.db_table)
    user_permissions = User.user_permissions.through._meta
    user_groups = User.groups.through._meta
    group_permissions = Group.permissions.through._meta

    def codes(join: str, where: str) -> str:
        return (
            f"ARRAY(SELECT DISTINCT ct.app_label || '.' || p.codename FROM {join} "
            f"JOIN {permission} p ON p.id = x.permission_id "
            f"JOIN {content_type} ct ON ct.id = p.content_type_id WHERE {where})"
        )

    columns = ", ".join(f"u.{quote(f.column)}" for f in User._meta.concrete_fields)
    return (
        f"SELECT {columns}, t.created, "
        + codes(f"{quote(user_permissions.db_table)} x", "x.user_id = u.id")
        + ", "
        + codes(
            f"{quote(user_groups.db_table)} g JOIN {quote(group_permissions.db_table)} x "
            "ON x.group_id = g.group_id",
            "g.user_id = u.id",
        )
        + f" FROM {token_table} t JOIN {user_table} u ON u.id = t.user_id WHERE t.key = %s"
    )


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
