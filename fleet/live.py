"""Live rider state in Redis: the last known position per rider, and the on-duty riders of each city.

- ``live:rider:<id>``: a hash ``lat, lon, recorded_at, speed, city`` with a TTL (``LIVE_POSITION_TTL_S``);
  ``recorded_at`` is UTC ISO-8601 with microseconds, always the same width, so it sorts as text.
- ``live:geo:<CITY>``: a GEO set of the city's on-duty riders (member: the rider id).
- ``live:pending:<CITY>``: the city's positions not yet sent to its dispatchers, the newest per rider
  (field: rider id, value: the ``rider.moved`` entry as JSON), emptied by ``dispatch.coalesce`` every flush.
- ``live:watch:<rider id>``: the orders whose public tracking page is open on that rider (a set of order ids
  with a TTL), so ingest publishes the rider's moves to those pages only while someone watches.

Key names go through the default cache's ``make_key``, so they carry its ``KEY_PREFIX`` (each test run has
its own) and the cache's ``delete_pattern`` clears them with the rest. This module only talks to Redis: the
callers (``fleet.services``, ``fleet.selectors``) decide when, and what a Redis failure means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django_redis import get_redis_connection

# Compare-and-set of a rider's position: the hash moves only to a strictly newer recorded_at, so a late or
# replayed batch never moves a rider backwards, and two concurrent batches cannot interleave (a script runs
# atomically). When the stored point is newer, an on-duty rider is still (re)placed in the city's GEO set
# at the stored position, so a rider back on duty is found again even if the first batch is an old one.
# A move forward also records the point in the city's pending hash for the dashboard (when ARGV[9], the
# rider.moved entry, is given), and answers the orders whose tracking page watches the rider: one round trip.
# KEYS: rider hash, city GEO set, city pending hash, rider watch set.
# ARGV: recorded_at, lat, lon, speed, city, ttl_s, member, is_on_duty (1/0), pending entry JSON or '',
# pending TTL ms. Returns {1, watching order ids...} when the position moved forward, {0} when it was left.
_POSITION_SET = """
local stored = redis.call('HGET', KEYS[1], 'recorded_at')
if stored and stored >= ARGV[1] then
    if ARGV[8] == '1' then
        local at = redis.call('HMGET', KEYS[1], 'lon', 'lat')
        if at[1] and at[2] then
            redis.call('GEOADD', KEYS[2], at[1], at[2], ARGV[7])
        end
    end
    return {0}
end
redis.call('HSET', KEYS[1], 'recorded_at', ARGV[1], 'lat', ARGV[2], 'lon', ARGV[3], 'speed', ARGV[4], 'city', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
if ARGV[8] == '1' then
    redis.call('GEOADD', KEYS[2], ARGV[3], ARGV[2], ARGV[7])
end
if ARGV[9] ~= '' then
    redis.call('HSET', KEYS[3], ARGV[7], ARGV[9])
    redis.call('PEXPIRE', KEYS[3], ARGV[10])
end
local watching = redis.call('SMEMBERS', KEYS[4])
table.insert(watching, 1, 1)
return watching
"""

#: A city's pending hash outlives a missed flush by this much, then goes (nobody is watching that city).
PENDING_TTL_MS = 60_000
#: How long a tracking page's watch on a rider lasts unless renewed (the page renews it on every change).
WATCH_TTL_S = 60 * 60


@dataclass(frozen=True)
class LivePosition:
    rider_id: int
    lat: float
    lon: float
    recorded_at: datetime
    speed_kmh: float | None
    city_code: str


@dataclass(frozen=True)
class GeoHit:
    rider_id: int
    distance_km: float
    position: LivePosition | None  # None: the rider's hash expired (a stale GEO member)


def rider_key(rider_id: int) -> str:
    return cache.make_key(f"live:rider:{rider_id}")


def geo_key(city_code: str) -> str:
    return cache.make_key(f"live:geo:{city_code.upper()}")


def pending_key(city_code: str) -> str:
    return cache.make_key(f"live:pending:{city_code.upper()}")


def watch_key(rider_id: int) -> str:
    return cache.make_key(f"live:watch:{rider_id}")


def epoch_key() -> str:
    return cache.make_key("live:epoch")


def _redis() -> Any:
    return get_redis_connection("default")


def epoch_present() -> bool:
    """Whether the live state is known to be whole: the marker ``live_state_repair`` sets after a rebuild.
    Redis keeps nothing on disk, so after a restart (or a flush) the marker is gone with everything else."""
    return bool(_redis().exists(epoch_key()))


def epoch_mark() -> None:
    _redis().set(epoch_key(), timestamp(datetime.now(UTC)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def timestamp(at: datetime) -> str:
    """``recorded_at`` as stored: UTC, microseconds, fixed width (so Lua's string compare orders it)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Advance:
    moved: bool
    watching_order_ids: list[int]  # tracking pages open on the rider (only when it moved)


def position_advance(
    *,
    rider_id: int,
    city_code: str,
    lat: float,
    lon: float,
    recorded_at: datetime,
    speed_kmh: float | None,
    ttl_s: int,
    is_on_duty: bool,
    pending_entry: str = "",
) -> Advance:
    """Stores the rider's position if it is newer than the stored one (``moved``); an on-duty rider is (re)added
    to the city's GEO set either way. When the position moved, ``pending_entry`` (a JSON ``rider.moved`` entry)
    is kept as the rider's newest in the city's pending hash for the next dashboard flush, and the answer names
    the orders whose tracking page watches the rider. One script, one round trip. Raises ``redis.RedisError``.
    """
    client = _redis()
    script = client.register_script(_POSITION_SET)
    answer = script(
        keys=[rider_key(rider_id), geo_key(city_code), pending_key(city_code), watch_key(rider_id)],
        args=[
            timestamp(recorded_at),
            repr(float(lat)),
            repr(float(lon)),
            "" if speed_kmh is None else repr(float(speed_kmh)),
            city_code.upper(),
            int(ttl_s),
            str(rider_id),
            "1" if is_on_duty else "0",
            pending_entry,
            PENDING_TTL_MS,
        ],
        client=client,
    )
    return Advance(moved=bool(answer[0]), watching_order_ids=[int(_text(order_id)) for order_id in answer[1:]])


def track_watch(*, rider_id: int, order_id: int) -> None:
    """A tracking page of the order is open on the rider: ingest publishes the rider's moves to it for
    ``WATCH_TTL_S`` (renewed by every call). Raises ``redis.RedisError``."""
    pipe = _redis().pipeline(transaction=False)
    pipe.sadd(watch_key(rider_id), str(order_id))
    pipe.expire(watch_key(rider_id), WATCH_TTL_S)
    pipe.execute()


_FIELDS = ("lat", "lon", "recorded_at", "speed", "city")


def position_get(rider_id: int) -> LivePosition | None:
    """The rider's last known position, or None when there is none (or it expired)."""
    return _position_from(rider_id, _redis().hmget(rider_key(rider_id), *_FIELDS))


def _position_from(rider_id: int, row: Sequence[Any]) -> LivePosition | None:
    """An HMGET of ``_FIELDS`` as a position; None when the hash is gone."""
    lat, lon, recorded_at, speed, city = (None if value is None else _text(value) for value in row)
    if lat is None or lon is None or recorded_at is None:
        return None
    return LivePosition(
        rider_id=rider_id,
        lat=float(lat),
        lon=float(lon),
        recorded_at=datetime.fromisoformat(recorded_at),
        speed_kmh=float(speed) if speed else None,
        city_code=city or "",
    )


def geo_remove(*, members: Iterable[tuple[str, int]]) -> None:
    """Takes riders out of their cities' GEO sets: ``members`` is ``(city_code, rider_id)`` pairs. One round trip."""
    by_city: dict[str, list[str]] = {}
    for city_code, rider_id in members:
        by_city.setdefault(city_code.upper(), []).append(str(rider_id))
    if not by_city:
        return
    pipe = _redis().pipeline(transaction=False)
    for city_code, ids in by_city.items():
        pipe.zrem(geo_key(city_code), *ids)
    pipe.execute()


def geo_members(city_code: str) -> set[int]:
    """Every rider id in the city's GEO set (for tests and ops checks; dispatch uses ``geo_nearest``)."""
    return {int(_text(m)) for m in _redis().zrange(geo_key(city_code), 0, -1)}


def geo_nearest(*, city_code: str, lat: float, lon: float, radius_km: float, count: int) -> list[GeoHit]:
    """The city's on-duty riders within ``radius_km`` of the point, nearest first, at most ``count``.

    One GEOSEARCH, then every hit's hash in one pipeline. Hits whose hash expired come back with
    ``position=None`` (the caller drops them with ``geo_remove``).
    """
    client = _redis()
    hits = client.geosearch(
        geo_key(city_code),
        longitude=lon,
        latitude=lat,
        radius=radius_km,
        unit="km",
        sort="ASC",
        count=count,
        withdist=True,
    )
    if not hits:
        return []
    rider_ids = [int(_text(member)) for member, _ in hits]
    pipe = client.pipeline(transaction=False)
    for rider_id in rider_ids:
        pipe.hmget(rider_key(rider_id), *_FIELDS)
    rows = pipe.execute()
    return [
        GeoHit(rider_id=rider_id, distance_km=float(distance), position=_position_from(rider_id, row))
        for rider_id, (_, distance), row in zip(rider_ids, hits, rows, strict=True)
    ]
