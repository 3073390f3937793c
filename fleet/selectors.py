"""Fleet reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from fleet.models import LocationLog


def rider_track_recent(*, rider_id: int, since: datetime | None = None, limit: int = 500) -> QuerySet[LocationLog]:
    """A rider's newest points (newest first), by default of the last 24 hours.

    Bounded by time so PostgreSQL prunes the log to the partitions that can hold them.
    """
    since = since or timezone.now() - timedelta(hours=24)
    return LocationLog.objects.filter(rider_id=rider_id, recorded_at__gte=since).order_by("-recorded_at")[:limit]
