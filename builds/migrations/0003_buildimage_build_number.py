"""Each build image carries its build's number, for an app's latest build from one index."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_build_numbers(apps, schema_editor):
    Build = apps.get_model("builds", "Build")
    BuildImage = apps.get_model("builds", "BuildImage")
    BuildImage.objects.update(
        build_number=Subquery(Build.objects.filter(pk=OuterRef("build_id")).values("number")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("builds", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="buildimage",
            name="build_number",
            field=models.PositiveBigIntegerField(null=True, verbose_name="build number"),
        ),
        migrations.RunPython(copy_build_numbers, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="buildimage",
            name="build_number",
            field=models.PositiveBigIntegerField(verbose_name="build number"),
        ),
        migrations.AddIndex(
            model_name="buildimage",
            index=models.Index(
                fields=["application", "-build_number", "-build"],
                name="build_image_app_latest_idx",
            ),
        ),
    ]
