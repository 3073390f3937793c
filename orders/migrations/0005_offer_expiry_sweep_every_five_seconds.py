"""Offers expire by the sweep alone, so it runs every 5 seconds instead of every minute.

The schedule's sync never re-times an entry ops may have changed; this migration does, once, because the
per-offer expiry task the minute was a safety net for is gone. Databases migrated from scratch registered
the entry with its new timing already (``fleet/0006``); this then finds nothing to change.
"""

from django.db import migrations
from django.utils import timezone

NAME = "fleetops.orders.offers_expire_due"


def every_five_seconds(apps, schema_editor):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    interval, _ = interval_model.objects.get_or_create(every=5, period="seconds")
    changed = task_model.objects.filter(name=NAME, crontab__isnull=False).update(
        interval=interval,
        crontab=None,
        expire_seconds=4,
        description="Every 5 seconds: pending order offers past their deadline expire and their orders go to the "
        "next rider.",
    )
    if changed:  # a running beat reloads its schedule
        apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )


def every_minute(apps, schema_editor):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    crontab, _ = crontab_model.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    task_model.objects.filter(name=NAME, interval__isnull=False).update(crontab=crontab, interval=None, expire_seconds=50)


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0004_offer_attempts_help"),
        ("fleet", "0006_register_periodic_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(every_five_seconds, every_minute)]
