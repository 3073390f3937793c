"""Celery tasks of the fleet app: thin, named, each calls one lifecycle function. Retries on transient errors
and ``acks_late`` come from ``config.tasks.FleetTask``; the queue from ``CELERY_TASK_ROUTES`` (bulk)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from fleet import distance, partitions, services


@shared_task(name="fleet.ensure_location_partitions")
def ensure_location_partitions_task() -> dict[str, Any]:
    """Idempotent: months that exist are left alone; a lock timeout (OperationalError) is retried."""
    return asdict(partitions.location_partitions_ensure())


@shared_task(name="fleet.archive_location_partitions")
def archive_location_partitions_task() -> list[dict[str, Any]]:
    """Idempotent: a month is dropped only after its archive is verified, so a rerun archives what is left."""
    return [asdict(archived) for archived in partitions.location_partitions_archive()]


@shared_task(name="fleet.rider_distances_compute")
def rider_distances_compute_task() -> dict[str, int]:
    """Idempotent: recomputes yesterday's and today's (portal time) rows; yesterday so that the points of its
    last minutes, and batches that arrive late, are counted after midnight. Returns rows written per day."""
    today = timezone.localdate()
    return {
        day.isoformat(): distance.rider_day_distances_compute(day=day) for day in (today - timedelta(days=1), today)
    }


@shared_task(name="fleet.live_state_repair")
def live_state_repair_task() -> int:
    """Idempotent: with the live state whole (its marker present) it does nothing; a rebuild never moves a
    rider back (compare-and-set on recorded_at)."""
    return services.live_state_repair()
