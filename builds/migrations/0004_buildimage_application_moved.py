"""The foreign key now names applications.Application: same table, so nothing in the database."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("applications", "0001_initial"),
        ("builds", "0003_buildimage_build_number"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="buildimage",
                    name="application",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="build_images",
                        to="applications.application",
                        verbose_name="application",
                    ),
                ),
            ],
        ),
    ]
