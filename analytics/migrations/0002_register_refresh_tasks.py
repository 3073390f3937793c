"""Registers the view refreshes (config/schedule.py: analytics.*) in django-celery-beat, where ops see, pause
and re-time them. Entries already registered are left as ops set them."""

from django.db import migrations


def register(apps, schema_editor):
    from config.schedule import sync_schedule

    sync_schedule(apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0001_views'),
        ('fleet', '0006_register_periodic_tasks'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.RunPython(register, migrations.RunPython.noop),
    ]
