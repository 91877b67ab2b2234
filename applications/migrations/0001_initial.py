"""Application moves from the releases app to this one, keeping its table, rows and ids.

Only Django's picture of the model moves (state operations); the table stays
`releases_application`. Its content type is relabelled in place, so its permissions (and every
grant of them), admin log entries and any generic relation keep pointing at the same row.
"""

import django.core.validators
from django.db import migrations, models

import applications.deploy_config


def relabel_content_type(apps, schema_editor, old="releases", new="applications"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    # A fresh database has neither yet: post_migrate creates the new one after all migrations.
    if not types.filter(app_label=new, model="application").exists():
        types.filter(app_label=old, model="application").update(app_label=new)


def relabel_content_type_back(apps, schema_editor):
    relabel_content_type(apps, schema_editor, old="applications", new="releases")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("releases", "0003_application_change_deploy_config"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Application",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=63, unique=True, validators=[django.core.validators.RegexValidator("^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$", "Not a valid application name: 1-63 of A-Z a-z 0-9 _ . -, starting and ending alphanumeric.", code="invalid_app_name")], verbose_name="name")),
                        ("deploy_config", models.JSONField(blank=True, default=dict, validators=[applications.deploy_config.validate_deploy_config], verbose_name="deploy config")),
                        ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                    ],
                    options={
                        "verbose_name": "application",
                        "verbose_name_plural": "applications",
                        "db_table": "releases_application",
                        "ordering": ["name"],
                        "permissions": [("change_deploy_config", "Can change an application's deploy config")],
                        "constraints": [models.CheckConstraint(condition=models.Q(("name__regex", "^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")), name="application_name_valid")],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_type, relabel_content_type_back),
    ]
