"""The periodic schedule, in code. Synced into django-celery-beat after every ``migrate``.

Ops see every entry in admin (Periodic tasks) and may pause it or change its timing there; a sync keeps
their ``enabled`` choice and puts the task, timing and expiry back to what this file says. Entries of
ours (``fleetops.`` names) that this file no longer lists are disabled, never silently kept running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

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
)


def sync_schedule(**kwargs: Any) -> None:
    """Creates or updates a django-celery-beat PeriodicTask (with its crontab) for every SCHEDULE entry."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    with transaction.atomic():
        for entry in SCHEDULE:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=entry.crontab.get("minute", "*"),
                hour=entry.crontab.get("hour", "*"),
                day_of_week=entry.crontab.get("day_of_week", "*"),
                day_of_month=entry.crontab.get("day_of_month", "*"),
                month_of_year=entry.crontab.get("month_of_year", "*"),
                timezone=settings.TIME_ZONE,
            )
            PeriodicTask.objects.update_or_create(
                name=entry.name,
                defaults={
                    "task": entry.task,
                    "crontab": crontab,
                    "interval": None,
                    "expire_seconds": entry.expires_s,
                    "queue": entry.queue,
                    "description": entry.description,
                },
            )
        PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(
            name__in=[entry.name for entry in SCHEDULE]
        ).update(enabled=False)
