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
    expires_s: int = field(metadata={"why": "a run that could not start in time is dropped, not piled up"})
    description: str = ""
    queue: str | None = None
    #: Either a crontab (portal time; minute granularity) or an interval in seconds.
    crontab: dict[str, str] | None = None
    every_s: int | None = None

    def __post_init__(self) -> None:
        if (self.crontab is None) == (self.every_s is None):
            raise ValueError(f"{self.task}: give a crontab or every_s, not both or neither")

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
        task="fleet.live_state_repair",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: when Redis has lost the live state (restarted empty), every on-duty rider is put "
        "back on the live map from the newest point in the location log; otherwise one EXISTS.",
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
        every_s=5,
        expires_s=4,
        description="Every 5 seconds: pending order offers past their deadline expire and their orders go to the "
        "next rider.",
    ),
    Periodic(
        task="wallet.reconcile",
        crontab={"minute": "30", "hour": "1"},
        expires_s=6 * 60 * 60,
        description="Nightly: every rider's balance row against the sum of their ledger entries, in one SQL "
        "aggregate; drift is recorded (admin: Balances > Reconciliation) and logged, never corrected.",
    ),
    Periodic(
        task="analytics.refresh_dashboard_stats",
        crontab={"minute": "*"},
        expires_s=50,
        description="Every minute: REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_dashboard_stats (the KPIs per "
        "city), then the cached stats are invalidated. Skipped while another refresh of it runs.",
        queue="bulk",
    ),
    Periodic(
        task="analytics.refresh_rider_leaderboard",
        crontab={"minute": "7"},
        expires_s=50 * 60,
        description="Hourly: REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_rider_leaderboard (7 days' earnings, "
        "deliveries and rating per rider, ranked per city), then the cached leaderboards are invalidated.",
        queue="bulk",
    ),
    Periodic(
        task="analytics.refresh_rider_performance_summary",
        crontab={"minute": "23", "hour": "*/6"},
        expires_s=5 * 60 * 60,
        description="Every six hours: REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_rider_performance_summary "
        "(orders by outcome, acceptance and on-time rates, rating, hours on duty per rider).",
        queue="bulk",
    ),
)


def timing(apps: Any, entry: Periodic) -> dict[str, Any]:
    """The ``PeriodicTask`` fields that say when ``entry`` runs: its crontab or its interval schedule (found or
    created), the other None."""
    if entry.every_s is not None:
        interval, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
            every=entry.every_s, period="seconds"
        )
        return {"interval": interval, "crontab": None}
    assert entry.crontab is not None
    crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute=entry.crontab.get("minute", "*"),
        hour=entry.crontab.get("hour", "*"),
        day_of_week=entry.crontab.get("day_of_week", "*"),
        day_of_month=entry.crontab.get("day_of_month", "*"),
        month_of_year=entry.crontab.get("month_of_year", "*"),
        timezone=settings.TIME_ZONE,
    )
    return {"crontab": crontab, "interval": None}


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
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    marker_model = apps.get_model("django_celery_beat", "PeriodicTasks")

    with transaction.atomic():
        known = set(task_model.objects.filter(name__startswith=PREFIX).values_list("name", flat=True))
        changed = 0
        for entry in SCHEDULE:
            if entry.name in known:
                continue
            task_model.objects.create(
                name=entry.name,
                task=entry.task,
                **timing(apps, entry),
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
