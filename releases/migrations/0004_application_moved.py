"""Application now lives in the applications app (its 0001): only Django's state changes here."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("applications", "0001_initial"),
        ("builds", "0004_buildimage_application_moved"),
        ("deployments", "0005_deployment_application_moved"),
        ("releases", "0003_application_change_deploy_config"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="releaseapp",
                    name="application",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="releases",
                        to="applications.application",
                        verbose_name="application",
                    ),
                ),
                migrations.DeleteModel(name="Application"),
            ],
        ),
    ]
