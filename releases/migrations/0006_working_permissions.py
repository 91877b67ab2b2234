"""The working permissions left for Application (see applications 0003); only the state changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0005_holds'),
        ('applications', '0003_working_permissions'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='batch',
            options={'ordering': ['-created_at', '-pk'], 'verbose_name': 'batch', 'verbose_name_plural': 'batches'},
        ),
        migrations.AlterModelOptions(
            name='releaseapp',
            options={'ordering': ['batch_id', 'application__name'], 'verbose_name': 'release', 'verbose_name_plural': 'releases'},
        ),
    ]
