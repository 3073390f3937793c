"""The periodic schedule, in code, registered in django-celery-beat by a data migration.

``fleet/migrations/0006_register_periodic_tasks`` registers every entry; after that, each ``migrate`` runs
the same sync (post_migrate), which only *adds* entries code has and the database lacks and disables our
entries (``fleetops.`` names) that code no longer lists. Entries already registered belong to ops: they
pause, re-time or re-expire them in admin (Periodic tasks) and a deploy never undoes it. Changing the timing
of an existing entry from code is therefore a data migration of its own, not an edit here alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

PREFIX = "fleetops."


@dataclass(frozen=True)
class Periodic:
    task: str
    crontab: dict[str, str]
    expires_s: int = field(metadata={"why": "a run that could not start in time is dropped, not piled up"})
    description: str = ""
    queue: str | None = None

    @property
    def name(self) -> str:
        return PREFIX + self.task


SCHEDULE: tuple[Periodic, ...] = (
    Periodic(
        task="riders.hos_enforce",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: riders who reached the daily or weekly hours-of-service limit go AUTO_OFF.",
    ),
    Periodic(
        task="riders.stale_auto_off",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: on-duty riders with no GPS point for RIDER_STALE_AFTER_S go AUTO_OFF.",
    ),
    Periodic(
        task="riders.sos_escalate_due",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: SOS alerts still open SOS_ESCALATE_AFTER_S after they were raised are re-raised "
        "to every city's dispatchers and logged (the safety net under the per-alert riders.sos_escalate task).",
    ),
    Periodic(
        task="fleet.ensure_location_partitions",
        crontab={"minute": "15", "hour": "2"},
        expires_s=60 * 60,
        description="Daily: location-log partitions for this month and the next LOCATION_PARTITION_MONTHS_AHEAD "
        "months and the DEFAULT partition; moves any point found in the default into its month.",
    ),
    Periodic(
        task="fleet.archive_location_partitions",
        # The 2nd (portal time): the first run after a month has passed the retention cutoff in UTC too.
        crontab={"minute": "45", "hour": "3", "day_of_month": "2"},
        expires_s=6 * 60 * 60,
        description="Monthly: location-log months older than LOCATION_RETENTION_MONTHS exported to gzip CSV with a "
        "SHA-256 file under LOCATION_ARCHIVE_DIR, verified, then detached and dropped.",
    ),
    Periodic(
        task="fleet.rider_distances_compute",
        crontab={"minute": "*/15"},
        expires_s=10 * 60,
        description="Every 15 minutes: each rider's distance today and yesterday (portal time) from the location "
        "log, haversine between consecutive points, segments faster than 200 km/h left out (GPS glitches).",
    ),
    Periodic(
        task="orders.offers_expire_due",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: pending order offers past their deadline expire and their orders go to the next "
        "rider (the safety net under the per-offer orders.offer_expire task).",
    ),
    Periodic(
        task="wallet.reconcile",
        crontab={"minute": "30", "hour": "1"},
        expires_s=6 * 60 * 60,
        description="Nightly: every rider's balance row against the sum of their ledger entries, in one SQL "
        "aggregate; drift is recorded (admin: Balances > Reconciliation) and logged, never corrected.",
    ),
)


def sync_schedule(apps: Any = None, **kwargs: Any) -> int:
    """Registers the SCHEDULE entries django-celery-beat lacks and disables ours that SCHEDULE dropped.

    ``apps`` is a migration's app registry (historical models) or None for the running one; post_migrate
    passes its own keyword arguments, ignored here. When anything changed, django-celery-beat's change
    marker is bumped so a running beat reloads (historical models and ``update()`` send no signals).
    Returns how many entries were added or disabled.
    """
    if apps is None or not hasattr(apps, "get_model"):
        from django.apps import apps as global_apps

        apps = global_apps
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    marker_model = apps.get_model("django_celery_beat", "PeriodicTasks")

    with transaction.atomic():
        known = set(task_model.objects.filter(name__startswith=PREFIX).values_list("name", flat=True))
        changed = 0
        for entry in SCHEDULE:
            if entry.name in known:
                continue
            crontab, _ = crontab_model.objects.get_or_create(
                minute=entry.crontab.get("minute", "*"),
                hour=entry.crontab.get("hour", "*"),
                day_of_week=entry.crontab.get("day_of_week", "*"),
                day_of_month=entry.crontab.get("day_of_month", "*"),
                month_of_year=entry.crontab.get("month_of_year", "*"),
                timezone=settings.TIME_ZONE,
            )
            task_model.objects.create(
                name=entry.name,
                task=entry.task,
                crontab=crontab,
                expire_seconds=entry.expires_s,
                queue=entry.queue,
                description=entry.description,
            )
            changed += 1
        changed += (
            task_model.objects.filter(name__startswith=PREFIX, enabled=True)
            .exclude(name__in=[entry.name for entry in SCHEDULE])
            .update(enabled=False)
        )
        if changed:
            marker_model.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
    return changed
