"""Moving Application to its own app loses nothing: rows, ids, grants, admin history."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from applications.models import Application as Moved
from releases.models import ReleaseApp as CurrentReleaseApp

BEFORE = [
    ("releases", "0003_application_change_deploy_config"),
    ("builds", "0003_buildimage_build_number"),
    ("deployments", "0004_deployment_retry"),
    ("applications", None),
]
AFTER = [
    ("applications", "0001_initial"),
    ("releases", "0004_application_moved"),
    ("builds", "0004_buildimage_application_moved"),
    ("deployments", "0005_deployment_application_moved"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1]]).apps


@pytest.fixture
def before_the_move(django_db_blocker):
    """The database as it was before the move, with the data a running service had; the
    latest schema is put back afterwards for the tests that follow."""
    with django_db_blocker.unblock():
        apps = migrate(BEFORE)
        yield apps
        migrate(migrate_leaf_nodes())


def migrate_leaf_nodes():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_the_move_keeps_rows_grants_and_history(before_the_move):
    # The auth, admin and content-type tables do not change: their models are today's.
    old = before_the_move
    Application = old.get_model("releases", "Application")
    Batch = old.get_model("releases", "Batch")
    ReleaseApp = old.get_model("releases", "ReleaseApp")

    # As on a database made before the move: the application's type is the releases app's.
    ContentType.objects.filter(app_label="applications").delete()
    app_type, _ = ContentType.objects.get_or_create(app_label="releases", model="application")
    permission, _ = Permission.objects.get_or_create(
        content_type_id=app_type.pk, codename="change_deploy_config", defaults={"name": "deploy"}
    )
    application = Application.objects.create(name="api", deploy_config={"pre": {"namespace": "p"}})
    batch = Batch.objects.create(name="b1")
    release = ReleaseApp.objects.create(batch=batch, application=application, image_tag="v1")
    operator = User.objects.create(username="operator")
    ContentType.objects.clear_cache()
    operator.user_permissions.add(permission)
    team = Group.objects.create(name="payments")
    team.permissions.add(permission)
    member = User.objects.create(username="member")
    member.groups.add(team)
    LogEntry.objects.create(
        user=operator,
        content_type_id=app_type.pk,
        object_id=str(application.pk),
        object_repr="api",
        action_flag=2,
        change_message="Changed deploy config.",
    )

    migrate(AFTER)

    ContentType.objects.clear_cache()
    moved = Moved.objects.get(pk=application.pk)
    assert (moved.name, moved.deploy_config) == ("api", {"pre": {"namespace": "p"}})
    assert CurrentReleaseApp.objects.get(pk=release.pk).application == moved
    new_type = ContentType.objects.get_for_model(Moved)
    assert new_type.pk == app_type.pk
    assert not ContentType.objects.filter(app_label="releases", model="application").exists()
    user = User.objects.get(pk=operator.pk)
    assert user.has_perm("applications.change_deploy_config")
    assert User.objects.get(pk=member.pk).has_perm("applications.change_deploy_config")
    entry = LogEntry.objects.get(object_id=str(application.pk))
    assert entry.get_edited_object() == moved
