"""Fleet writes: GPS points into the partitioned location log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction


@dataclass(frozen=True)
class Point:
    recorded_at: datetime
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: int | None = None
    accuracy_m: float | None = None
    battery_pct: int | None = None


# One statement per batch: the points travel as arrays and are unnested server-side. A point
# already stored (same rider and recorded_at, the primary key) is skipped, never doubled.
_INSERT_POINTS = """
    INSERT INTO fleet_locationlog
        (rider_id, recorded_at, lat, lon, speed_kmh, heading_deg, accuracy_m, battery_pct, received_at)
    SELECT %s, p.recorded_at, p.lat, p.lon, p.speed_kmh, p.heading_deg, p.accuracy_m, p.battery_pct, now()
    FROM unnest(
        %s::timestamptz[], %s::float8[], %s::float8[], %s::float8[], %s::int2[], %s::float8[], %s::int2[]
    ) AS p(recorded_at, lat, lon, speed_kmh, heading_deg, accuracy_m, battery_pct)
    ON CONFLICT (rider_id, recorded_at) DO NOTHING
"""


@transaction.atomic
def location_points_record(*, rider_id: int, points: Sequence[Point]) -> int:
    """Stores a rider's batch of GPS points in one INSERT; returns how many were new.

    Points must already be validated (ranges, and a ``recorded_at`` inside an existing partition).
    Joins the caller's transaction when there is one (the demo seed writes a rider's world in one).
    """
    if not points:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_POINTS,
            [
                rider_id,
                [p.recorded_at for p in points],
                [p.lat for p in points],
                [p.lon for p in points],
                [p.speed_kmh for p in points],
                [p.heading_deg for p in points],
                [p.accuracy_m for p in points],
                [p.battery_pct for p in points],
            ],
        )
        return cursor.rowcount
