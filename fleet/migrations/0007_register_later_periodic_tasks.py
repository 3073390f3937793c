"""Registers the periodic tasks code gained since 0006 (the SOS escalation sweep, the live-state repair) in
django-celery-beat. Entries already registered are left as ops set them."""

from django.db import migrations


def register(apps, schema_editor):
    from config.schedule import sync_schedule

    sync_schedule(apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ("fleet", "0006_register_periodic_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(register, migrations.RunPython.noop),
    ]
