"""Grant or revoke a working permission for some applications, to a team (group) or a user.

    python manage.py grant_access --group Payments --permission switch_version pay-api pay-web

Idempotent: a grant already held (or a revoke of one not held) is reported and changes nothing.
All or nothing: an unknown application, group, user or permission is an error (exit 2) before
anything changes.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from guardian.shortcuts import assign_perm, get_group_perms, get_user_perms, remove_perm

from applications.models import Application
from applications.permissions import WORKING_PERMISSIONS, permission_name

USAGE_ERROR = 2


class Command(BaseCommand):
    help = (
        "Grant (or with --revoke, revoke) a working permission for these applications to a "
        "group or a user."
    )

    def add_arguments(self, parser):
        holder = parser.add_mutually_exclusive_group(required=True)
        holder.add_argument("--group", help="The group (a team) that gets or loses it.")
        holder.add_argument("--user", help="The user (by username) who gets or loses it.")
        parser.add_argument(
            "--permission", required=True, help=f"One of {', '.join(WORKING_PERMISSIONS)}."
        )
        parser.add_argument("apps", nargs="+", metavar="APP", help="Application names.")
        parser.add_argument("--revoke", action="store_true", help="Revoke instead of grant.")

    def handle(self, *args, group, user, permission, apps, revoke, **options):
        if permission not in WORKING_PERMISSIONS:
            raise CommandError(
                f"Unknown permission {permission!r}: use one of {', '.join(WORKING_PERMISSIONS)}.",
                returncode=USAGE_ERROR,
            )
        holder, label = self._holder(group=group, user=user)
        found = {a.name: a for a in Application.objects.filter(name__in=apps)}
        if unknown := [name for name in apps if name not in found]:
            raise CommandError(
                f"No application named {', '.join(unknown)}; nothing was changed.",
                returncode=USAGE_ERROR,
            )
        held_by = get_group_perms if group else get_user_perms
        with transaction.atomic():
            for name in dict.fromkeys(apps):
                application = found[name]
                holds = permission in held_by(holder, application)
                if revoke and holds:
                    remove_perm(permission_name(permission), holder, application)
                    line = f"{name}: revoked {permission} from {label}."
                elif revoke:
                    line = f"{name}: {label} does not hold {permission}; unchanged."
                elif holds:
                    line = f"{name}: {label} already holds {permission}; unchanged."
                else:
                    assign_perm(permission_name(permission), holder, application)
                    line = f"{name}: granted {permission} to {label}."
                self.stdout.write(line)

    def _holder(self, *, group, user):
        if group is not None:
            holder = Group.objects.filter(name=group).first()
            if holder is None:
                raise CommandError(
                    f"No group named {group!r}; nothing was changed.", returncode=USAGE_ERROR
                )
            return holder, f"group {group}"
        holder = get_user_model().objects.filter(username=user).first()
        if holder is None:
            raise CommandError(
                f"No user named {user!r}; nothing was changed.", returncode=USAGE_ERROR
            )
        return holder, f"user {user}"
