"""Registers the project's periodic tasks (config/schedule.py) in django-celery-beat, where ops see, pause
and re-time them. Entries already there are left as ops set them; later migrates add only new entries."""

from django.db import migrations


def register(apps, schema_editor):
    from config.schedule import sync_schedule

    sync_schedule(apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ("fleet", "0005_locationlog_recorded_at_brin"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(register, migrations.RunPython.noop),
    ]
