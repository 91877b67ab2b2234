"""The foreign key now names applications.Application: same table, so nothing in the database."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("applications", "0001_initial"),
        ("deployments", "0004_deployment_retry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="deployment",
                    name="application",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deployments",
                        to="applications.application",
                        verbose_name="application",
                    ),
                ),
            ],
        ),
    ]
