"""A user and all their global permissions in one query, for every request that names a user.

Django reads a session's user in one query, then the permissions of the user and of their
groups in two more, each compiled by the ORM on every request; on PostgreSQL, `ModelBackend`
here reads all three in one statement built once per process. A live page polled every 2 s by
every open tab, and every API call, pays that on each request.

Nothing is kept between requests: the permissions fill the caches Django's `ModelBackend`
keeps on the user object of one request, so a revoked permission or a deactivated user is
refused by the very next request. Object permissions stay guardian's (its own backend).
"""

from functools import cache

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id):
        if connection.vendor != "postgresql":
            # The one-query read uses PostgreSQL arrays; the demo's SQLite reads it Django's way.
            return super().get_user(user_id)
        rows = users_with_permissions(where="u.id = %s", params=[user_id])
        user = rows[0][0] if rows else None
        return user if self.user_can_authenticate(user) else None


def users_with_permissions(*, where: str, params: list, joins: str = "", columns: str = ""):
    """(user, *more) for each row `FROM auth_user u {joins} WHERE {where}` finds: the user with
    their global permissions already read (`has_perm(perm)` asks nothing more), then the values
    of `columns` (more columns of the joined tables, comma-separated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_user_columns()}, {_permission_arrays()}{', ' + columns if columns else ''} "
            f"FROM {connection.ops.quote_name(get_user_model()._meta.db_table)} u {joins} "
            f"WHERE {where}",
            params,
        )
        rows = cursor.fetchall()
    User = get_user_model()
    fields = _user_field_names()
    found = []
    for row in rows:
        user = User.from_db(connection.alias, fields, row[: len(fields)])
        user_permissions, group_permissions = row[len(fields) : len(fields) + 2]
        if not user.is_superuser:
            # A superuser's "all permissions" are every Permission row: left to Django to read
            # if asked (`has_perm` answers True before looking).
            user._user_perm_cache = set(user_permissions)
            user._group_perm_cache = set(group_permissions)
            user._perm_cache = user._user_perm_cache | user._group_perm_cache
        found.append((user, *row[len(fields) + 2 :]))
    return found


@cache
def _user_field_names() -> list[str]:
    return [f.attname for f in get_user_model()._meta.concrete_fields]


@cache
def _user_columns() -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"u.{quote(f.column)}" for f in get_user_model()._meta.concrete_fields)


@cache
def _permission_arrays() -> str:
    """The user's own and their groups' permissions as "app_label.codename" (the form
    `has_perm` takes), two arrays; built from the models' tables once per process."""
    User = get_user_model()
    quote = connection.ops.quote_name
    permission = quote(Permission._meta.db_table)
    content_type = quote(ContentType._meta.db_table)
    user_permissions = quote(User.user_permissions.through._meta.db_table)
    user_groups = quote(User.groups.through._meta.db_table)
    group_permissions = quote(Group.permissions.through._meta.db_table)

    def codes(join: str, where: str) -> str:
        return (
            f"ARRAY(SELECT DISTINCT ct.app_label || '.' || p.codename FROM {join} "
            f"JOIN {permission} p ON p.id = x.permission_id "
            f"JOIN {content_type} ct ON ct.id = p.content_type_id WHERE {where})"
        )

    return ", ".join(
        (
            codes(f"{user_permissions} x", "x.user_id = u.id"),
            codes(
                f"{user_groups} g JOIN {group_permissions} x ON x.group_id = g.group_id",
                "g.user_id = u.id",
            ),
        )
    )
