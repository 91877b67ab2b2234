"""`manage.py grant_access`: grant or revoke a working permission for applications (SPEC §12)."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import ManagementUtility, call_command
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_group_perms, get_user_perms

from applications.models import Application
from tests.factories import ApplicationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def apps():
    return [ApplicationFactory(name=n) for n in ("pay-api", "pay-web", "web")]


@pytest.fixture
def payments():
    return Group.objects.create(name="Payments")


def grant_access(*args) -> str:
    out = StringIO()
    call_command("grant_access", *args, stdout=out)
    return out.getvalue()


def run_from_shell(capsys, *args) -> tuple[int, str]:
    """As `python manage.py grant_access ...` runs it: the exit status and what stderr says.
    It closes the database connections on its way out: tests using it run outside a
    transaction (`transaction=True`)."""
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "grant_access", *args]).execute()
    return exited.value.code, capsys.readouterr().err


def grants() -> set:
    return {
        *UserObjectPermission.objects.values_list("user__username", "permission__codename"),
        *GroupObjectPermission.objects.values_list("group__name", "permission__codename"),
    }


def app(name):
    return Application.objects.get(name=name)


def test_grants_a_team_a_permission_for_its_applications(apps, payments):
    out = grant_access(
        "--group", "Payments", "--permission", "switch_version", "pay-api", "pay-web"
    )

    assert out.splitlines() == [
        "pay-api: granted switch_version to group Payments.",
        "pay-web: granted switch_version to group Payments.",
    ]
    assert list(get_group_perms(payments, app("pay-api"))) == ["switch_version"]
    assert not get_group_perms(payments, app("web")).exists()
    carol = UserFactory(username="carol")
    carol.groups.add(payments)
    assert carol.has_perm("applications.switch_version", app("pay-web"))
    assert not carol.has_perm("applications.switch_version", app("web"))


def test_granting_again_changes_nothing(apps, payments):
    grant_access("--group", "Payments", "--permission", "deploy_batch", "pay-api")
    before = GroupObjectPermission.objects.count()

    out = grant_access("--group", "Payments", "--permission", "deploy_batch", "pay-api")

    assert out == "pay-api: group Payments already holds deploy_batch; unchanged.\n"
    assert GroupObjectPermission.objects.count() == before


def test_grants_to_a_user_and_revokes(apps):
    dana = UserFactory(username="dana")
    grant_access("--user", "dana", "--permission", "lift_hold", "web")
    assert list(get_user_perms(dana, app("web"))) == ["lift_hold"]

    out = grant_access("--user", "dana", "--permission", "lift_hold", "web", "--revoke")
    assert out == "web: revoked lift_hold from user dana.\n"
    assert not get_user_perms(dana, app("web")).exists()

    again = grant_access("--user", "dana", "--permission", "lift_hold", "web", "--revoke")
    assert again == "web: user dana does not hold lift_hold; unchanged.\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--group", "Payments", "--permission", "switch_version", "pay-api", "nope"],
            "No application named nope; nothing was changed.",
        ),
        (
            ["--group", "Nobody", "--permission", "switch_version", "pay-api"],
            "No group named 'Nobody'; nothing was changed.",
        ),
        (
            ["--user", "nobody", "--permission", "switch_version", "pay-api"],
            "No user named 'nobody'; nothing was changed.",
        ),
        (
            ["--group", "Payments", "--permission", "view_application", "pay-api"],
            "Unknown permission 'view_application': use one of switch_version, deploy_batch, "
            "add_hold, lift_hold.",
        ),
        (
            [
                "--group",
                "Payments",
                "--permission",
                "switch_version",
                "pay-api",
                "nope",
                "--revoke",
            ],
            "No application named nope; nothing was changed.",
        ),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_an_unknown_name_exits_2_and_changes_nothing(apps, payments, capsys, args, error):
    grant_access("--group", "Payments", "--permission", "switch_version", "pay-api")
    before = grants()

    code, stderr = run_from_shell(capsys, *args)

    assert code == 2
    assert error in stderr
    assert grants() == before


@pytest.mark.django_db(transaction=True)
def test_neither_or_both_holders_is_a_usage_error(apps, payments, capsys):
    code, stderr = run_from_shell(capsys, "--permission", "switch_version", "pay-api")
    assert code == 2
    assert "one of the arguments --group --user is required" in stderr
    assert grants() == set()
