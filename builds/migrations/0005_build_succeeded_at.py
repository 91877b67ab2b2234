"""When each build was first seen successful, for "latest" across repos (SPEC §4), copied onto
its images with its repo, so an app's latest build is read from an index."""

from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery


def stamp_successful_builds(apps, schema_editor):
    Build = apps.get_model("builds", "Build")
    BuildImage = apps.get_model("builds", "BuildImage")
    # A final status never changes and only a status change saves a known build, so a
    # successful build was last updated when it became successful.
    Build.objects.filter(status="success").update(succeeded_at=F("updated_at"))
    build = Build.objects.filter(pk=OuterRef("build_id"))
    BuildImage.objects.update(
        repo=Subquery(build.values("repo")[:1]),
        succeeded_at=Subquery(build.values("succeeded_at")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("builds", "0004_buildimage_application_moved"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="buildimage",
            name="build_image_app_latest_idx",
        ),
        migrations.AddField(
            model_name="build",
            name="succeeded_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="succeeded at"),
        ),
        migrations.AddField(
            model_name="buildimage",
            name="repo",
            field=models.CharField(
                blank=True, default="", max_length=255, verbose_name="repository"
            ),
        ),
        migrations.AddField(
            model_name="buildimage",
            name="succeeded_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="succeeded at"),
        ),
        migrations.RunPython(stamp_successful_builds, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="buildimage",
            index=models.Index(
                fields=["application", "-succeeded_at", "-build"],
                name="build_image_app_succeeded_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="buildimage",
            index=models.Index(
                fields=["application", "repo", "-build_number"], name="build_image_app_repo_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="build",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "success"), ("succeeded_at__isnull", False)),
                    models.Q(
                        models.Q(("status", "success"), _negated=True),
                        ("succeeded_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="build_succeeded_at_iff_success",
            ),
        ),
    ]
