"""The working permissions move onto Application, so they can be granted for one application.

`releases.switch_version` (on ReleaseApp) and `releases.deploy_batch` (on Batch) become
`applications.switch_version` and `applications.deploy_batch`: guardian grants a permission for an
object only when the permission's content type is that object's. The permission rows are
re-pointed in place, so every existing global grant (to users and to groups) keeps working.
"""

from django.db import migrations

# codename -> the releases model it was declared on
MOVED = {"switch_version": "releaseapp", "deploy_batch": "batch"}


def move_permissions(apps, schema_editor, *, backwards=False):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    types = ContentType.objects.using(db)
    for codename, model in MOVED.items():
        source, target = ("releases", model), ("applications", "application")
        if backwards:
            source, target = target, source
        old = (
            Permission.objects.using(db)
            .filter(content_type__app_label=source[0], content_type__model=source[1])
            .filter(codename=codename)
            .first()
        )
        if old is None:
            continue  # a fresh database: post_migrate creates the permissions where they are now
        target_type, _ = types.get_or_create(app_label=target[0], model=target[1])
        new = Permission.objects.using(db).filter(content_type=target_type, codename=codename).first()
        if new is None:
            # The grants point at the permission's row: moving the row moves them all.
            old.content_type = target_type
            old.save(update_fields=["content_type"])
        else:
            new.user_set.add(*old.user_set.all())
            new.group_set.add(*old.group_set.all())
            old.delete()


def move_permissions_back(apps, schema_editor):
    move_permissions(apps, schema_editor, backwards=True)


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0002_application_hold_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("releases", "0004_application_moved"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="application",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("change_deploy_config", "Can change an application's deploy config"),
                    ("switch_version", "Can switch a release to another image tag"),
                    ("deploy_batch", "Can start and cancel batch rollouts"),
                    ("add_hold", "Can place a hold that stops rollouts"),
                    ("lift_hold", "Can lift a hold"),
                    ("grant_access", "Can grant the working permissions on applications"),
                ],
                "verbose_name": "application",
                "verbose_name_plural": "applications",
            },
        ),
        migrations.RunPython(move_permissions, move_permissions_back),
    ]
