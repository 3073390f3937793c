"""Fleet writes: GPS points into the partitioned location log, and the live rider state that follows them."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from redis.exceptions import RedisError

from config.errors import PayloadTooLarge, RuleViolation
from fleet import events, live
from fleet.models import City
from fleet.partitions import location_retention_cutoff
from riders.models import DutyStatus, Rider

logger = logging.getLogger(__name__)


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


@dataclass
class _Columns:
    """A batch column by column, the way ``_INSERT_POINTS`` takes it."""

    recorded_at: list[datetime]
    lat: list[float]
    lon: list[float]
    speed_kmh: list[float | None]
    heading_deg: list[int | None]
    accuracy_m: list[float | None]
    battery_pct: list[int | None]

    @classmethod
    def empty(cls) -> _Columns:
        return cls([], [], [], [], [], [], [])


def _array(values: Sequence[object]) -> str:
    """A PostgreSQL array literal of numbers, datetimes and Nones (``{1.5,NULL,2026-11-23T10:00:00+00:00}``).

    Built here because psycopg adapts a Python list element by element, and for a 200-point batch that was
    half the cost of the INSERT (bench/ingest.py). Only for values of these types: nothing in them needs
    quoting (``repr`` of a float has no comma, brace, quote or space; neither has an ISO-8601 time).
    """
    return "{" + ",".join(_array_item(v) for v in values) + "}"


def _array_item(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):  # in UTC: an offset of seconds (valid in Python) never reaches the parser
        return value.astimezone(UTC).isoformat()
    return repr(value)


def _points_insert(rider_id: int, columns: _Columns) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_POINTS,
            [
                rider_id,
                _array(columns.recorded_at),
                _array(columns.lat),
                _array(columns.lon),
                _array(columns.speed_kmh),
                _array(columns.heading_deg),
                _array(columns.accuracy_m),
                _array(columns.battery_pct),
            ],
        )
        return cursor.rowcount


@transaction.atomic
def location_points_record(*, rider_id: int, points: Sequence[Point]) -> int:
    """Stores a rider's batch of GPS points in one INSERT; returns how many were new.

    Points must already be validated (ranges; a ``recorded_at`` outside every month lands in the DEFAULT
    partition, never lost, and the daily ``ensure_location_partitions`` moves it into its month).
    Joins the caller's transaction when there is one (the demo seed writes a rider's world in one).
    """
    if not points:
        return 0
    return _points_insert(
        rider_id,
        _Columns(
            recorded_at=[p.recorded_at for p in points],
            lat=[p.lat for p in points],
            lon=[p.lon for p in points],
            speed_kmh=[p.speed_kmh for p in points],
            heading_deg=[p.heading_deg for p in points],
            accuracy_m=[p.accuracy_m for p in points],
            battery_pct=[p.battery_pct for p in points],
        ),
    )


# --- GPS batches from the driver app ---------------------------------------------------------------

#: Points one batch may carry; more is refused whole (413) before any point is looked at.
MAX_POINTS_PER_BATCH = 500
#: How far ahead of the server's clock a phone's ``recorded_at`` may be.
MAX_CLOCK_AHEAD = timedelta(minutes=2)


class BatchTooLarge(PayloadTooLarge):
    code = "batch_too_large"


class NotOnDuty(RuleViolation):
    code = "not_on_duty"


class RejectCode(models.TextChoices):
    """Why one point of a batch was not stored."""

    NOT_AN_OBJECT = "not_an_object", "The point is not a JSON object"
    REQUIRED = "required", "A required field is missing or null"
    WRONG_TYPE = "wrong_type", "The field is not a number (or, for recorded_at, not a string)"
    OUT_OF_RANGE = "out_of_range", "The number is outside the field's range, or not finite"
    INVALID_TIME = "invalid_time", "recorded_at is not an ISO-8601 date and time"
    TIME_ZONE_MISSING = "time_zone_missing", "recorded_at has no time zone (Z or an offset)"
    IN_FUTURE = "in_future", "recorded_at is more than 2 minutes ahead of the server's clock"
    TOO_OLD = "too_old", "recorded_at is older than the location log's retention window"


class PointField(models.TextChoices):
    LAT = "lat"
    LON = "lon"
    RECORDED_AT = "recorded_at"
    SPEED = "speed"
    HEADING = "heading"
    ACCURACY = "accuracy"
    BATTERY = "battery"


@dataclass(frozen=True, slots=True)
class RejectedPoint:
    index: int
    code: str
    field: str | None  # None when the point as a whole is wrong (not an object)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[RejectedPoint]


class _Invalid(Exception):
    """One point's first problem; caught in the batch loop (never leaves this module)."""

    def __init__(self, code: str, field: str | None) -> None:
        self.code = code
        self.field = field


_INFINITIES = (math.inf, -math.inf)
_MAX_TIME_LENGTH = 64  # longer is no ISO-8601 time; spares the parser megabyte strings


def _float(value: Any, field: str) -> float:
    """A JSON number as a finite float. Booleans are not numbers; neither are strings of digits."""
    kind = type(value)
    if kind is float:
        if value != value or value in _INFINITIES:  # NaN, or Infinity from a lenient JSON parser
            raise _Invalid(RejectCode.OUT_OF_RANGE, field)
        return cast(float, value)
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _Invalid(RejectCode.OUT_OF_RANGE, field) from None
    raise _Invalid(RejectCode.WRONG_TYPE, field)


def _required(point: dict[str, Any], field: str) -> float:
    value = point.get(field)
    if value is None:
        raise _Invalid(RejectCode.REQUIRED, field)
    return _float(value, field)


def _optional(point: dict[str, Any], field: str) -> float | None:
    value = point.get(field)
    return None if value is None else _float(value, field)


def _recorded_at(point: dict[str, Any], oldest: datetime, newest: datetime) -> datetime:
    value = point.get("recorded_at")
    if value is None:
        raise _Invalid(RejectCode.REQUIRED, "recorded_at")
    if type(value) is not str:
        raise _Invalid(RejectCode.WRONG_TYPE, "recorded_at")
    if len(value) > _MAX_TIME_LENGTH:
        raise _Invalid(RejectCode.INVALID_TIME, "recorded_at")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(RejectCode.INVALID_TIME, "recorded_at") from None
    if at.tzinfo is None:
        raise _Invalid(RejectCode.TIME_ZONE_MISSING, "recorded_at")
    if at > newest:
        raise _Invalid(RejectCode.IN_FUTURE, "recorded_at")
    if at < oldest:
        raise _Invalid(RejectCode.TOO_OLD, "recorded_at")
    return at


def _point_validate(point: Any, oldest: datetime, newest: datetime, columns: _Columns) -> datetime:
    """Checks one raw point and appends it to ``columns``; raises ``_Invalid`` with its first problem.

    Nothing is appended unless the whole point is valid. Returns its ``recorded_at``.
    """
    if type(point) is not dict:
        raise _Invalid(RejectCode.NOT_AN_OBJECT, None)
    lat = _required(point, "lat")
    if not -90.0 <= lat <= 90.0:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "lat")
    lon = _required(point, "lon")
    if not -180.0 <= lon <= 180.0:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "lon")
    at = _recorded_at(point, oldest, newest)
    speed = _optional(point, "speed")
    if speed is not None and speed < 0:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "speed")
    heading = _optional(point, "heading")
    if heading is not None and not 0 <= heading < 360:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "heading")
    accuracy = _optional(point, "accuracy")
    if accuracy is not None and accuracy < 0:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "accuracy")
    battery = _optional(point, "battery")
    if battery is not None and not 0 <= battery <= 100:
        raise _Invalid(RejectCode.OUT_OF_RANGE, "battery")
    columns.recorded_at.append(at)
    columns.lat.append(lat)
    columns.lon.append(lon)
    columns.speed_kmh.append(speed)
    # Whole degrees and percent, half up; 359.5 and above is north again.
    columns.heading_deg.append(None if heading is None else int(heading + 0.5) % 360)
    columns.accuracy_m.append(accuracy)
    columns.battery_pct.append(None if battery is None else int(battery + 0.5))
    return at


@transaction.atomic(durable=True)
def location_batch_ingest(*, rider: Rider, points_raw: Sequence[Any], now: datetime) -> IngestResult:
    """Stores the valid points of a rider's GPS batch in one INSERT; reports the invalid ones by index.

    Rules, in order: more than ``MAX_POINTS_PER_BATCH`` points is ``BatchTooLarge`` (nothing is looked at);
    a rider not ON duty is ``NotOnDuty``; then every point is checked on its own (``RejectCode``) and the
    valid ones are inserted together, a point already stored (same ``recorded_at``) counting as a duplicate.
    ``points_raw`` is the parsed JSON list as it came; ``rider`` is as the request's authentication loaded it
    (with its city), read moments ago like any other check would. After commit the batch's newest point moves the
    rider's live position (never backwards) and becomes the rider's pending point for the city's dashboards
    (flushed as one ``rider.moved`` per city every ``DISPATCH_FLUSH_MS``); a Redis failure there is logged,
    never raised (the points are stored).
    """
    if len(points_raw) > MAX_POINTS_PER_BATCH:
        raise BatchTooLarge(f"A batch carries at most {MAX_POINTS_PER_BATCH} points; send the rest in another batch.")
    if rider.duty_status != DutyStatus.ON:
        raise NotOnDuty("Go on duty before sending locations.")

    oldest, newest_allowed = location_retention_cutoff(now=now), now + MAX_CLOCK_AHEAD
    columns = _Columns.empty()
    rejected: list[RejectedPoint] = []
    newest_index, newest_at = -1, oldest
    for index, point in enumerate(points_raw):
        try:
            at = _point_validate(point, oldest, newest_allowed, columns)
        except _Invalid as invalid:
            rejected.append(RejectedPoint(index=index, code=invalid.code, field=invalid.field))
            continue
        if at >= newest_at:
            newest_index, newest_at = len(columns.recorded_at) - 1, at
    if not columns.recorded_at:
        return IngestResult(accepted=0, duplicates=0, rejected=rejected)

    accepted = _points_insert(rider.pk, columns)
    transaction.on_commit(
        partial(
            live_position_advance,
            rider_id=rider.pk,
            city_code=rider.city.code,
            is_on_duty=True,
            point=Point(
                recorded_at=newest_at,
                lat=columns.lat[newest_index],
                lon=columns.lon[newest_index],
                speed_kmh=columns.speed_kmh[newest_index],
                heading_deg=columns.heading_deg[newest_index],
                accuracy_m=columns.accuracy_m[newest_index],
                battery_pct=columns.battery_pct[newest_index],
            ),
        )
    )
    return IngestResult(accepted=accepted, duplicates=len(columns.recorded_at) - accepted, rejected=rejected)


# --- Live state (Redis), after commit ----------------------------------------------------------------


def live_position_advance(*, rider_id: int, city_code: str, point: Point, is_on_duty: bool) -> bool:
    """Moves the rider's live position to ``point`` unless a newer one is known, and queues it for the city's
    dashboards (``dispatch.coalesce`` flushes it); returns whether the position moved.

    Runs after the batch's commit. The compare-and-set, the pending point and the question "is a tracking page
    watching this rider?" are one Redis script (``live.position_advance``), so two concurrent batches never move a
    rider backwards and ingest pays one round trip. Tracking pages watching the rider get the move at once.
    Redis or channel-layer failures are logged and swallowed: the points are already stored, and the next batch
    repairs the live state.
    """
    entry = events.rider_moved_entry(
        rider_id=rider_id,
        lat=point.lat,
        lon=point.lon,
        recorded_at=live.timestamp(point.recorded_at),
        speed_kmh=point.speed_kmh,
        heading_deg=point.heading_deg,
        battery_pct=point.battery_pct,
    )
    try:
        advance = live.position_advance(
            rider_id=rider_id,
            city_code=city_code,
            lat=point.lat,
            lon=point.lon,
            recorded_at=point.recorded_at,
            speed_kmh=point.speed_kmh,
            ttl_s=settings.LIVE_POSITION_TTL_S,
            is_on_duty=is_on_duty,
            pending_entry=json.dumps(entry),
        )
    except RedisError:
        logger.warning("live position of rider %s not updated: Redis failed", rider_id, exc_info=True)
        return False
    if advance.watching_order_ids:
        try:
            events.rider_moved_tracked(order_ids=advance.watching_order_ids, entry=entry)
        except Exception:  # the channel layer is best effort here: the position itself is stored
            logger.warning("rider.moved for rider %s not published", rider_id, exc_info=True)
    return advance.moved


# The newest point of each on-duty rider within the live TTL: one index probe per rider (the location log's
# primary key is (rider_id, recorded_at)), not a scan of the log.
_NEWEST_POINTS_ON_DUTY = """
    SELECT r.id, c.code, p.recorded_at, p.lat, p.lon, p.speed_kmh
    FROM riders_rider r
    JOIN fleet_city c ON c.id = r.city_id
    CROSS JOIN LATERAL (
        SELECT l.recorded_at, l.lat, l.lon, l.speed_kmh
        FROM fleet_locationlog l
        WHERE l.rider_id = r.id AND l.recorded_at > %s
        ORDER BY l.recorded_at DESC
        LIMIT 1
    ) p
    WHERE r.duty_status = %s
"""


def live_state_rebuild(*, now: datetime | None = None) -> int:
    """Puts every on-duty rider back on the live map (position and the city's GEO set) from the newest point
    the location log holds for them within ``LIVE_POSITION_TTL_S``; returns how many it placed.

    For after Redis lost its data (it keeps nothing on disk): riders whose apps keep sending are back with
    their next batch anyway, this brings back the ones that are quiet for a while, so automatic assignment
    finds them. The compare-and-set keeps a newer position a batch wrote meanwhile. Raises ``RedisError``.
    """
    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        since = now - timedelta(seconds=settings.LIVE_POSITION_TTL_S)
        cursor.execute(_NEWEST_POINTS_ON_DUTY, [since, DutyStatus.ON])
        rows = cursor.fetchall()
    for rider_id, city_code, recorded_at, lat, lon, speed_kmh in rows:
        live.position_advance(
            rider_id=rider_id,
            city_code=city_code,
            lat=lat,
            lon=lon,
            recorded_at=recorded_at,
            speed_kmh=speed_kmh,
            ttl_s=settings.LIVE_POSITION_TTL_S,
            is_on_duty=True,
            pending_entry="",
        )
    return len(rows)


def live_state_repair() -> int:
    """Rebuilds the live state when Redis has lost it (no ``live.epoch_present`` marker), then sets the
    marker; otherwise does nothing. Every minute (``fleet.live_state_repair``): one ``EXISTS`` when all is
    well. Returns how many riders it placed."""
    if live.epoch_present():
        return 0
    placed = live_state_rebuild()
    live.epoch_mark()
    logger.warning("live state rebuilt from the location log: %s on-duty riders placed", placed)
    return placed


def riders_live_withdraw(*, riders: Iterable[tuple[int, int]]) -> None:
    """Takes riders who went off duty out of their cities' GEO sets: ``riders`` is ``(rider_id, city_id)``.

    Called after the commit that took them off duty (``riders.services``); one query for the city codes and
    one Redis round trip. Their last known position stays until its TTL, for the dashboard. A Redis failure
    is logged: ``fleet.selectors.riders_nearby`` also drops riders who are not on duty.
    """
    pairs = list(riders)
    if not pairs:
        return
    codes = dict(City.objects.filter(pk__in={city_id for _, city_id in pairs}).values_list("pk", "code"))
    try:
        live.geo_remove(members=[(codes[city_id], rider_id) for rider_id, city_id in pairs if city_id in codes])
    except RedisError:
        logger.warning("riders %s not removed from the live map: Redis failed", [r for r, _ in pairs], exc_info=True)
