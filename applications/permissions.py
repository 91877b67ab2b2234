"""Who may do what to which application.

The working permissions are held globally (Django's ModelBackend: a user's or a group's
permission) or for one application (django-guardian's object permission, to a user or a group).
Every check is `user.has_perm(perm)` or `user.has_perm(perm, application)` through `may`, so the
API, the admin and the CLI answer alike.

Guardian keeps the object grants it has read on the user object (GUARDIAN_AUTO_PREFETCH); `may`
fills that cache with one query over user and group grants together, so a check costs one query
however many grants or applications it looks at. The user object lives for one request, so a
revoke counts from the next request.
"""

from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext
from guardian.models import GroupObjectPermission, UserObjectPermission

from .models import Application

SWITCH_VERSION = "switch_version"
DEPLOY_BATCH = "deploy_batch"
ADD_HOLD = "add_hold"
LIFT_HOLD = "lift_hold"
# Granted globally or per application, by `grant_access` and the admin's grants page.
WORKING_PERMISSIONS = (SWITCH_VERSION, DEPLOY_BATCH, ADD_HOLD, LIFT_HOLD)
# Held globally: may grant and revoke the working permissions.
GRANT_ACCESS_PERMISSION = "applications.grant_access"


def permission_name(codename: str) -> str:
    return f"applications.{codename}"


def object_grants_load(user) -> None:
    """Read all of this user's object grants (their own and their groups') in one query, into
    the cache guardian's backend reads (`_guardian_perms_cache`, keyed like its checker's)."""
    if hasattr(user, "_guardian_perms_cache"):
        return
    columns = ("content_type_id", "object_pk", "permission__codename")
    rows = (
        UserObjectPermission.objects.filter(user=user)
        .values_list(*columns)
        .union(GroupObjectPermission.objects.filter(group__user=user).values_list(*columns))
    )
    cache: dict[tuple[int, str], list[str]] = {}
    for content_type_id, object_pk, codename in rows:
        cache.setdefault((content_type_id, object_pk), []).append(codename)
    user._guardian_perms_cache = cache


def may(user, codename: str, application: Application | None = None) -> bool:
    """The user holds the permission globally, or for this application."""
    if user is None or not user.is_authenticated:
        return False
    permission = permission_name(codename)
    if user.has_perm(permission):
        return True
    if application is None:
        return False
    object_grants_load(user)
    return user.has_perm(permission, application)


def may_somewhere(user, codename: str) -> bool:
    """The user holds the permission globally or for at least one application: whether to offer
    an action whose every use is then checked per application (the admin's bulk switch)."""
    if may(user, codename):
        return True
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    object_grants_load(user)
    return any(codename in granted for granted in user._guardian_perms_cache.values())


def you_may(user, application: Application) -> dict[str, bool]:
    """What the application's API page says the requester may do to it."""
    return {
        codename: may(user, codename, application) for codename in (SWITCH_VERSION, DEPLOY_BATCH)
    }


def missing_for(user, codename: str, applications) -> list[Application]:
    """The applications this user may not act on with this permission (empty: may on all)."""
    if may(user, codename):
        return []
    return [a for a in applications if not may(user, codename, a)]


def permission_needed(codename: str, applications=()) -> str:
    """What a refusal says: "You need the switch_version permission for pay-api." """
    names = ", ".join(sorted(a.name for a in applications))
    if not names:
        return gettext("You need the %(permission)s permission.") % {"permission": codename}
    return gettext("You need the %(permission)s permission for %(applications)s.") % {
        "permission": codename,
        "applications": names,
    }


def application_holders(application: Application) -> dict[str, dict[str, list[str]]]:
    """Who holds each working permission for this application: {"users": ..., "groups": ...}
    per codename, names sorted; global holders are not listed (they hold it for every app).
    Two queries."""
    content_type = ContentType.objects.get_for_model(Application)
    holders = {c: {"users": [], "groups": []} for c in WORKING_PERMISSIONS}
    grants = (
        ("users", UserObjectPermission, "user__username"),
        ("groups", GroupObjectPermission, "group__name"),
    )
    for kind, model, name in grants:
        rows = (
            model.objects.filter(
                content_type=content_type,
                object_pk=str(application.pk),
                permission__codename__in=WORKING_PERMISSIONS,
            )
            .values_list("permission__codename", name)
            .order_by(name)
        )
        for codename, holder in rows:
            holders[codename][kind].append(holder)
    return holders
