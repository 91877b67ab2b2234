"""The working permissions move onto Application: every existing global grant keeps working."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType

from applications.models import Application
from tests.applications.test_migrations import migrate, migrate_leaf_nodes

BEFORE = [("applications", "0001_initial"), ("releases", "0004_application_moved")]
AFTER = [("applications", "0003_working_permissions"), ("releases", "0006_working_permissions")]


@pytest.fixture
def before_the_move(django_db_blocker):
    with django_db_blocker.unblock():
        yield migrate(BEFORE)
        migrate(migrate_leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_global_grants_to_users_and_groups_survive_the_move(before_the_move):
    # As on a database made before: the permissions belong to the releases models.
    Permission.objects.filter(content_type__app_label="applications").exclude(
        codename__in=[
            "add_application",
            "change_application",
            "delete_application",
            "view_application",
            "change_deploy_config",
        ]
    ).delete()
    release_type, _ = ContentType.objects.get_or_create(app_label="releases", model="releaseapp")
    batch_type, _ = ContentType.objects.get_or_create(app_label="releases", model="batch")
    switch, _ = Permission.objects.get_or_create(
        content_type=release_type, codename="switch_version", defaults={"name": "switch"}
    )
    deploy, _ = Permission.objects.get_or_create(
        content_type=batch_type, codename="deploy_batch", defaults={"name": "deploy"}
    )
    alice = User.objects.create(username="alice")
    alice.user_permissions.add(switch)
    engineers = Group.objects.create(name="Release engineers")
    engineers.permissions.add(switch, deploy)
    bob = User.objects.create(username="bob")
    bob.groups.add(engineers)

    migrate(AFTER)

    ContentType.objects.clear_cache()
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert alice.has_perm("applications.switch_version")
    assert not alice.has_perm("applications.deploy_batch")
    assert bob.has_perms(["applications.switch_version", "applications.deploy_batch"])
    assert (
        not Permission.objects.filter(content_type__app_label="releases")
        .filter(codename__in=["switch_version", "deploy_batch"])
        .exists()
    )
    # Moved onto Application, the permission can now be granted for one application too.
    application_type = ContentType.objects.get_for_model(Application)
    assert Permission.objects.get(codename="switch_version").content_type == application_type
