"""Each deployment carries its release's application, and the indexes of "what runs where"."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery


def copy_applications(apps, schema_editor):
    Deployment = apps.get_model("deployments", "Deployment")
    ReleaseApp = apps.get_model("releases", "ReleaseApp")
    Deployment.objects.update(
        application_id=Subquery(
            ReleaseApp.objects.filter(pk=OuterRef("release_app_id")).values("application_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0002_deployment_claim"),
        ("releases", "0002_application_deploy_config_validator"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="application",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deployments",
                to="releases.application",
                verbose_name="application",
            ),
        ),
        migrations.RunPython(copy_applications, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="deployment",
            name="application",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="deployments",
                to="releases.application",
                verbose_name="application",
            ),
        ),
        migrations.AddIndex(
            model_name="deployment",
            index=models.Index(
                fields=["application", "environment", "-created_at", "-id"],
                name="deployment_app_recent_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="deployment",
            index=models.Index(
                condition=Q(status="succeeded"),
                fields=["application", "environment", "-finished_at", "-id"],
                name="deployment_app_running_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="deployment",
            index=models.Index(
                condition=Q(status="failed") | Q(status="cancelled", started_at__isnull=False),
                fields=["application", "environment", "-finished_at", "-id"],
                name="deployment_app_failed_idx",
            ),
        ),
    ]
