"""Fleet reads: the location log, cities, and the live map of on-duty riders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from fleet import live
from fleet.models import City, LocationLog, RiderDayDistance
from riders import selectors as rider_selectors


def rider_track_recent(*, rider_id: int, since: datetime | None = None, limit: int = 500) -> QuerySet[LocationLog]:
    """A rider's newest points (newest first), by default of the last 24 hours.

    Bounded by time on both sides so PostgreSQL prunes the log to the partitions of the window: ingest
    refuses points more than 2 minutes ahead of the clock, so nothing newer than that exists to be read.
    """
    now = timezone.now()
    since = since or now - timedelta(hours=24)
    return LocationLog.objects.filter(
        rider_id=rider_id, recorded_at__gte=since, recorded_at__lte=now + timedelta(minutes=2)
    ).order_by("-recorded_at")[:limit]


def rider_has_point_since(*, since: datetime) -> Exists:
    """``EXISTS`` a point recorded after ``since`` by the rider of the outer query (``OuterRef("pk")``).

    For the riders app's queries over riders. The primary key ``(rider_id, recorded_at)`` answers it, and
    the time bound prunes the log to the newest partitions.
    """
    return Exists(LocationLog.objects.filter(rider_id=OuterRef("pk"), recorded_at__gt=since))


def city_active(*, code: str) -> City | None:
    """The active city with this code (any case), or None."""
    return City.objects.filter(code=code.upper(), is_active=True).first()


@dataclass(frozen=True)
class NearbyRider:
    rider_id: int
    name: str
    distance_km: float
    lat: float
    lon: float
    recorded_at: datetime
    last_seen_s: int


#: GEOSEARCH asks for this many more than wanted, so members dropped below (expired, off duty) rarely
#: leave the answer short; dropped members are removed, so the slack is needed once per stale member.
_NEARBY_SLACK = 10


def riders_nearby(
    *, city_code: str, lat: float, lon: float, radius_km: float, limit: int, now: datetime | None = None
) -> list[NearbyRider]:
    """On-duty riders of the city within ``radius_km`` of the point, nearest first, at most ``limit``.

    From the city's GEO set and the riders' live hashes (one GEOSEARCH, one pipeline), with their names from
    one query. Members whose hash expired, or who are no longer on duty in this city (a batch that raced
    their going off duty can re-add them), are left out and removed from the set: housekeeping of derived
    state, not a business write. Raises ``redis.RedisError`` when Redis is down.
    """
    now = now or timezone.now()
    hits = live.geo_nearest(city_code=city_code, lat=lat, lon=lon, radius_km=radius_km, count=limit + _NEARBY_SLACK)
    names = rider_selectors.riders_on_duty_names(
        rider_ids=[hit.rider_id for hit in hits if hit.position is not None], city_code=city_code
    )
    gone = [hit.rider_id for hit in hits if hit.position is None or hit.rider_id not in names]
    if gone:
        live.geo_remove(members=[(city_code, rider_id) for rider_id in gone])
    nearby = []
    for hit in hits:
        if hit.position is None or hit.rider_id not in names:
            continue
        nearby.append(
            NearbyRider(
                rider_id=hit.rider_id,
                name=names[hit.rider_id],
                distance_km=round(hit.distance_km, 3),
                lat=hit.position.lat,
                lon=hit.position.lon,
                recorded_at=hit.position.recorded_at,
                last_seen_s=max(0, int((now - hit.position.recorded_at).total_seconds())),
            )
        )
    return nearby[:limit]


def distance_km_on(*, day: date, city_code: str | None = None) -> float:
    """Kilometres ridden on the portal's local ``day`` by every rider, or by the riders of one city.

    Reads ``RiderDayDistance`` (one aggregate query on its ``day`` index), so today's figure is as fresh as
    the last run of ``fleet.rider_distances_compute`` (every 15 minutes). A rider counts towards the city
    they belong to now, wherever the kilometres were ridden.
    """
    rows = RiderDayDistance.objects.filter(day=day)
    if city_code is not None:
        rows = rows.filter(rider__city__code=city_code.upper())
    metres = rows.aggregate(total=Sum("distance_m"))["total"] or 0
    return metres / 1000


@dataclass(frozen=True)
class KnownPosition:
    lat: float
    lon: float
    recorded_at: datetime


def rider_last_position(*, rider_id: int) -> KnownPosition | None:
    """The rider's last known position: the live hash in Redis, else (expired, or Redis down) the newest
    point of the last day in the location log. None when neither has one."""
    try:
        position = live.position_get(rider_id)
    except RedisError:
        position = None
    if position is not None:
        return KnownPosition(lat=position.lat, lon=position.lon, recorded_at=position.recorded_at)
    point = rider_track_recent(rider_id=rider_id, limit=1).first()
    if point is None:
        return None
    return KnownPosition(lat=point.lat, lon=point.lon, recorded_at=point.recorded_at)
