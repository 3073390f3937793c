"""Distance per rider per local day, from the GPS location log: one SQL statement computes and upserts a day.

A service module of its own (the write is one statement and its rules); the KPIs read the rows through
``fleet.selectors.distance_km_on``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from fleet.geo import EARTH_RADIUS_M

#: A segment between two consecutive points implying more than this is a GPS glitch, not a ride.
MAX_SEGMENT_SPEED_KMH = 200.0

# The day's points of each rider in time order (LAG pairs each point with the one before it), the haversine
# length and duration of every segment, then per rider the sum of the plausible segments and the point count.
# Both bounds are literals (client-side binding), so PostgreSQL prunes the log to the day's partitions when
# it plans the statement. A NULL rider_ids array folds to TRUE at plan time: every rider of the day.
_COMPUTE = """
    WITH point AS (
        SELECT
            rider_id,
            recorded_at,
            lat,
            lon,
            lag(recorded_at) OVER rider_track AS prev_recorded_at,
            lag(lat) OVER rider_track AS prev_lat,
            lag(lon) OVER rider_track AS prev_lon
        FROM fleet_locationlog
        WHERE recorded_at >= %(start)s
          AND recorded_at < %(end)s
          AND (%(rider_ids)s::bigint[] IS NULL OR rider_id = ANY (%(rider_ids)s::bigint[]))
        WINDOW rider_track AS (PARTITION BY rider_id ORDER BY recorded_at)
    ),
    segment AS (
        SELECT
            rider_id,
            2 * %(earth_radius_m)s::float8 * asin(least(1.0, sqrt(
                power(sin((radians(lat) - radians(prev_lat)) / 2), 2)
                + cos(radians(prev_lat)) * cos(radians(lat)) * power(sin(radians(lon - prev_lon) / 2), 2)
            ))) AS length_m,
            extract(epoch FROM recorded_at - prev_recorded_at)::float8 AS duration_s
        FROM point
    )
    INSERT INTO fleet_riderdaydistance (rider_id, day, distance_m, points, computed_at)
    SELECT
        rider_id,
        %(day)s::date,
        round(coalesce(sum(length_m) FILTER (WHERE length_m <= %(max_speed_mps)s::float8 * duration_s), 0))::integer,
        count(*),
        now()
    FROM segment
    GROUP BY rider_id
    ON CONFLICT (rider_id, day) DO UPDATE
        SET distance_m = EXCLUDED.distance_m, points = EXCLUDED.points, computed_at = EXCLUDED.computed_at
"""


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants (UTC) where the portal's local ``day`` starts and the next one starts: ``[start, end)``."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def compute_statement(*, day: date, rider_ids: Iterable[int] | None = None) -> tuple[str, dict[str, Any]]:
    """The statement ``rider_day_distances_compute`` runs, with its parameters (to EXPLAIN it, for one)."""
    start, end = local_day_bounds(day)
    return _COMPUTE, {
        "start": start,
        "end": end,
        "day": day,
        "rider_ids": None if rider_ids is None else [int(rider_id) for rider_id in rider_ids],
        "earth_radius_m": EARTH_RADIUS_M,
        "max_speed_mps": MAX_SEGMENT_SPEED_KMH / 3.6,
    }


@transaction.atomic(durable=True)
def rider_day_distances_compute(*, day: date, rider_ids: Iterable[int] | None = None) -> int:
    """Computes how far each rider travelled on the portal's local ``day`` and upserts one
    ``RiderDayDistance`` per rider with points that day; returns how many rows it wrote.

    One statement. The day runs from local midnight to the next local midnight (``settings.TIME_ZONE``),
    so a point belongs to the day on the portal's clock, not UTC's. A rider's points are taken in
    ``recorded_at`` order and the great-circle (haversine) lengths between consecutive points summed, on a
    sphere of radius ``EARTH_RADIUS_M`` (the same as ``fleet.simulation.haversine_m``). The segment that
    crosses midnight belongs to neither day: each day only pairs its own points.

    GPS glitches: a segment whose implied speed (length / time between its points) exceeds
    ``MAX_SEGMENT_SPEED_KMH`` is left out. A single bad fix B between good fixes A and C makes both A→B
    and B→C absurd, so both are dropped, and with them the real A→C movement (a few metres: fixes come
    seconds apart). Slow noise is not filtered: a rider standing still still accrues the wander of the fixes.

    Idempotent: a recompute overwrites the rider's row for the day (``ON CONFLICT (rider_id, day) DO
    UPDATE``), so running it again gives the same figures, and a late point is counted on the next run.
    Riders without points that day get no row (and a row already there is kept). ``rider_ids`` limits the
    computation to those riders. Durable: it is never part of a caller's transaction.
    """
    statement, params = compute_statement(day=day, rider_ids=rider_ids)
    if params["rider_ids"] == []:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount
