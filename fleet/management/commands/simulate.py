"""``manage.py simulate``: on-duty riders drive around their city and stream GPS batches.

Every tick each rider takes one step (``fleet.simulation``) and buffers the fix; every batch
interval each rider's buffer goes to the sink as one batch, the way the driver app posts them.
The sink is the only part that knows where points go: ``DirectSink`` stores them with the fleet
service; ``ApiSink`` (``--sink api --base-url http://127.0.0.1:8000``) posts them to
``POST /api/v1/driver/locations/`` with each rider's token, the way the driver app does.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import signal
import threading
import time
from argparse import ArgumentParser
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import FrameType
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from fleet.models import LocationLog
from fleet.services import MAX_POINTS_PER_BATCH, Point, location_points_record
from fleet.simulation import (
    LatLon,
    Mover,
    Waypoint,
    cruise_kmh_for,
    mover_advance,
    order_waypoints,
    random_point_within,
)
from orders.models import ACTIVE_STATUSES, Order
from riders import services as rider_services
from riders.models import DutyStatus, Rider

logger = logging.getLogger(__name__)
#: A rider's unsent points are capped (oldest dropped) so a long database outage cannot eat memory.
MAX_BUFFERED_POINTS = 1_000


class LocationSink(Protocol):
    """Where a rider's batch of points goes; answers how many of them were new."""

    name: str

    def post(self, *, rider_id: int, points: Sequence[Point]) -> int: ...


class DirectSink:
    """Stores a batch with ``location_points_record``: one INSERT, duplicates skipped by the key."""

    name = "direct"

    def post(self, *, rider_id: int, points: Sequence[Point]) -> int:
        return location_points_record(rider_id=rider_id, points=points)


class SinkUnavailable(Exception):
    """The sink could not take the batch this time (network, 5xx, 429): keep it and post it again later."""


class ApiSink:
    """Posts a batch to ``POST /api/v1/driver/locations/`` with the rider's token, as the driver app does.

    One keep-alive connection, reopened after an error; buffers over the API's 500 points go as several
    posts. Answers the ``accepted`` count. A network error, a 5xx or a 429 raises ``SinkUnavailable`` (the
    batch stays buffered; replayed points come back as duplicates, never as second rows); any other refusal
    (422 off duty, 401, 400) is logged and the batch dropped, since sending it again cannot help.
    """

    name = "api"
    path = "/api/v1/driver/locations/"

    def __init__(self, *, base_url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise CommandError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000, got {base_url!r}")
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port, self._timeout_s = parts.hostname, parts.port, timeout_s
        self._prefix = parts.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None
        self._tokens: dict[int, str] = {}

    def post(self, *, rider_id: int, points: Sequence[Point]) -> int:
        accepted = 0
        for start in range(0, len(points), MAX_POINTS_PER_BATCH):
            accepted += self._post_batch(rider_id, points[start : start + MAX_POINTS_PER_BATCH])
        return accepted

    def _token(self, rider_id: int) -> str:
        if rider_id not in self._tokens:
            self._tokens[rider_id] = rider_services.rider_api_token(rider_id=rider_id)
        return self._tokens[rider_id]

    def _post_batch(self, rider_id: int, points: Sequence[Point]) -> int:
        body = json.dumps({"points": [_point_json(p) for p in points]}).encode()
        headers = {
            "Authorization": f"Token {self._token(rider_id)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        status, payload = self._send(body, headers)
        if status == 202:
            return int(json.loads(payload)["accepted"])
        if status == 429 or status >= 500:
            raise SinkUnavailable(f"POST {self.path} answered {status}")
        logger.warning("rider %s: batch of %s points refused with %s: %s", rider_id, len(points), status, payload[:300])
        return 0

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """One POST; a kept-alive connection the server dropped meanwhile is reopened and the POST sent once more
        (safe: a point already stored is a duplicate)."""
        for attempt in (1, 2):
            reused = self._connection is not None
            if self._connection is None:
                self._connection = self._connection_class(self._host, self._port, timeout=self._timeout_s)
            try:
                self._connection.request("POST", self._prefix + self.path, body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if not reused or attempt == 2:
                    raise SinkUnavailable(f"POST {self.path} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _point_json(point: Point) -> dict[str, Any]:
    return {
        "lat": point.lat,
        "lon": point.lon,
        "recorded_at": point.recorded_at.isoformat(),
        "speed": point.speed_kmh,
        "heading": point.heading_deg,
        "accuracy": point.accuracy_m,
        "battery": point.battery_pct,
    }


def _direct_sink(options: dict[str, Any]) -> LocationSink:
    return DirectSink()


def _api_sink(options: dict[str, Any]) -> LocationSink:
    if not options.get("base_url"):
        raise CommandError("--sink api needs --base-url, e.g. --base-url http://127.0.0.1:8000")
    return ApiSink(base_url=options["base_url"])


#: Sinks by ``--sink`` name, each made from the command's options.
SINKS: dict[str, Callable[[dict[str, Any]], LocationSink]] = {"direct": _direct_sink, "api": _api_sink}


@dataclass
class SimRider:
    rider_id: int
    city_code: str
    mover: Mover
    order_ids: frozenset[int] = frozenset()
    buffer: list[Point] = field(default_factory=list)


@dataclass
class Totals:
    ticks: int = 0
    flushes: int = 0
    points: int = 0
    stored: int = 0
    duplicates: int = 0
    failed_flushes: int = 0


class Simulation:
    """The riders being driven, their buffers, and the sink their batches go to."""

    def __init__(self, *, sink: LocationSink, max_riders: int | None, rng: random.Random) -> None:
        self.sink = sink
        self.max_riders = max_riders
        self.rng = rng
        self.riders: dict[int, SimRider] = {}
        self.totals = Totals()

    def refresh(self) -> tuple[int, int]:
        """Picks up riders who went on duty and drops those who went off; re-reads active orders.

        Returns ``(joined, left)``. A rider who left has its buffer flushed first.
        """
        queryset = Rider.objects.filter(duty_status=DutyStatus.ON).select_related("city", "vehicle").order_by("id")
        if self.max_riders is not None:
            queryset = queryset[: self.max_riders]
        on_duty = {rider.pk: rider for rider in queryset}
        left = [rider_id for rider_id in self.riders if rider_id not in on_duty]
        if left:
            self.flush(only=left)
            for rider_id in left:
                del self.riders[rider_id]
        stops = self._active_stops(list(on_duty))
        joined = [rider_id for rider_id in on_duty if rider_id not in self.riders]
        last = self._last_positions(joined)
        for rider_id in joined:
            rider = on_duty[rider_id]
            center = LatLon(rider.city.center_lat, rider.city.center_lon)
            kind = rider.vehicle.kind if rider.vehicle else None
            position, heading, battery = last.get(rider_id, (None, 0.0, None))
            self.riders[rider_id] = SimRider(
                rider_id=rider_id,
                city_code=rider.city.code,
                mover=Mover(
                    position=position or random_point_within(center, 4_000, self.rng),
                    home=center,
                    cruise_kmh=cruise_kmh_for(kind, self.rng),
                    heading_deg=heading,
                    battery_pct=battery if battery is not None else self.rng.uniform(60, 100),
                ),
            )
        for rider_id, sim in self.riders.items():
            orders = stops.get(rider_id, [])
            order_ids = frozenset(order_id for order_id, _ in orders)
            if order_ids != sim.order_ids:
                # New or changed orders: head for them; the leftover roam target is dropped.
                sim.order_ids = order_ids
                waypoints = order_waypoints([stop for _, stop in orders], self.rng)
                sim.mover = _with_waypoints(sim.mover, waypoints)
        return len(joined), len(left)

    def _active_stops(self, rider_ids: list[int]) -> dict[int, list[tuple[int, tuple[str, LatLon, LatLon]]]]:
        stops: dict[int, list[tuple[int, tuple[str, LatLon, LatLon]]]] = {}
        rows = (
            Order.objects.filter(rider_id__in=rider_ids, status__in=ACTIVE_STATUSES)
            .order_by("rider_id", "assigned_at", "id")
            .values_list("id", "rider_id", "status", "pickup_lat", "pickup_lon", "drop_lat", "drop_lon")
        )
        for order_id, rider_id, status, p_lat, p_lon, d_lat, d_lon in rows:
            assert rider_id is not None
            stops.setdefault(rider_id, []).append((order_id, (status, LatLon(p_lat, p_lon), LatLon(d_lat, d_lon))))
        return stops

    @staticmethod
    def _last_positions(rider_ids: list[int]) -> dict[int, tuple[LatLon, float, float | None]]:
        """Each rider's latest point of the last six hours (older ones are not worth resuming from)."""
        if not rider_ids:
            return {}
        rows = (
            LocationLog.objects.filter(rider_id__in=rider_ids, recorded_at__gte=timezone.now() - timedelta(hours=6))
            .order_by("rider_id", "-recorded_at")
            .distinct("rider_id")
            .values_list("rider_id", "lat", "lon", "heading_deg", "battery_pct")
        )
        return {
            rider_id: (LatLon(lat, lon), float(heading or 0), float(battery) if battery is not None else None)
            for rider_id, lat, lon, heading, battery in rows
        }

    def tick(self, *, dt_s: float) -> None:
        recorded_at = timezone.now()
        for sim in self.riders.values():
            sim.mover, fix = mover_advance(sim.mover, dt_s=dt_s, rng=self.rng)
            sim.buffer.append(
                Point(
                    recorded_at=recorded_at,
                    lat=fix.lat,
                    lon=fix.lon,
                    speed_kmh=fix.speed_kmh,
                    heading_deg=fix.heading_deg,
                    accuracy_m=fix.accuracy_m,
                    battery_pct=fix.battery_pct,
                )
            )
            if len(sim.buffer) > MAX_BUFFERED_POINTS:
                del sim.buffer[: len(sim.buffer) - MAX_BUFFERED_POINTS]
        self.totals.ticks += 1

    def flush(self, *, only: Sequence[int] | None = None) -> tuple[int, int, int, int] | None:
        """Posts every buffered batch; returns ``(riders, points, stored, duplicates)``.

        A batch the sink fails to take stays buffered and is posted again next time; points that
        did reach the database then come back as duplicates, never as second rows.
        """
        sims = [self.riders[i] for i in only] if only is not None else list(self.riders.values())
        riders = points = stored = 0
        failed = False
        for sim in sims:
            if not sim.buffer:
                continue
            try:
                new = self.sink.post(rider_id=sim.rider_id, points=sim.buffer)
            except (DatabaseError, SinkUnavailable):
                failed = True
                break
            riders += 1
            points += len(sim.buffer)
            stored += new
            sim.buffer = []
        self.totals.points += points
        self.totals.stored += stored
        self.totals.duplicates += points - stored
        if failed:
            self.totals.failed_flushes += 1
            return None
        self.totals.flushes += 1
        return riders, points, stored, points - stored


def _with_waypoints(mover: Mover, waypoints: tuple[Waypoint, ...]) -> Mover:
    return replace(mover, waypoints=waypoints, dwell_s=0.0)


class Command(BaseCommand):
    help = (
        "Drives on-duty riders along plausible paths (towards their orders' pickups and drops, else around "
        "the city centre) and posts their GPS in batches. Stops after --iterations ticks, or on Ctrl-C."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tick-seconds", type=float, default=2.0, help="One GPS fix per rider per tick.")
        parser.add_argument("--batch-seconds", type=float, default=10.0, help="How often buffers are posted.")
        parser.add_argument("--riders", type=int, default=None, help="Drive at most this many on-duty riders.")
        parser.add_argument("--iterations", type=int, default=0, help="Stop after N ticks (0: run until stopped).")
        parser.add_argument(
            "--speedup",
            type=float,
            default=1.0,
            help="Riders cover this many times the ground per tick (timestamps stay on the wall clock).",
        )
        parser.add_argument("--refresh-seconds", type=float, default=60.0, help="How often to re-read who is on duty.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed for repeatable paths.")
        parser.add_argument("--sink", choices=sorted(SINKS), default="direct", help="Where the batches go.")
        parser.add_argument(
            "--base-url",
            default=None,
            help="With --sink api: the portal's address, e.g. http://127.0.0.1:8000 (batches go through HTTP).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tick_s: float = options["tick_seconds"]
        batch_s: float = options["batch_seconds"]
        iterations: int = options["iterations"]
        speedup: float = options["speedup"]
        refresh_s: float = options["refresh_seconds"]
        if tick_s <= 0 or batch_s <= 0 or speedup <= 0 or refresh_s <= 0:
            raise CommandError("--tick-seconds, --batch-seconds, --speedup and --refresh-seconds must be positive")
        if iterations < 0:
            raise CommandError("--iterations must be zero or more")

        with connection.cursor() as cursor:
            # This month's partition normally exists already (migration, then Beat); make sure.
            cursor.execute("SELECT fleet_locationlog_partition_ensure(now())")
        sim = Simulation(
            sink=SINKS[options["sink"]](options), max_riders=options["riders"], rng=random.Random(options["seed"])
        )
        joined, _ = sim.refresh()
        self.stdout.write(
            f"Simulating {joined} on-duty riders: a fix every {tick_s:g}s, batches every {batch_s:g}s, "
            f"speedup {speedup:g}, sink {sim.sink.name}"
            + (f", {iterations} ticks" if iterations else ", until stopped (Ctrl-C)")
        )
        if not joined:
            self.stdout.write("No rider is on duty: run manage.py seed_demo, or put riders on duty; polling.")

        stop = threading.Event()
        previous = self._install_signal_handlers(stop)
        started = time.monotonic()
        next_tick = next_flush = started
        next_flush += batch_s
        next_refresh = started + refresh_s
        try:
            while not stop.is_set():
                sim.tick(dt_s=tick_s * speedup)
                now = time.monotonic()
                done = iterations and sim.totals.ticks >= iterations
                if now >= next_flush or done:
                    self._flush(sim)
                    next_flush = now + batch_s
                if now >= next_refresh and not done:
                    joined, left = sim.refresh()
                    if joined or left:
                        self.stdout.write(
                            f"duty changed: {joined} riders joined, {left} left; {len(sim.riders)} driving"
                        )
                    next_refresh = now + refresh_s
                if done:
                    break
                next_tick += tick_s
                stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            self._restore_signal_handlers(previous)
            if stop.is_set():
                self.stdout.write("Stopping: posting what is buffered.")
                self._flush(sim)
            if isinstance(sim.sink, ApiSink):
                sim.sink.close()
            t = sim.totals
            self.stdout.write(
                self.style.SUCCESS(
                    f"Simulated {t.ticks} ticks in {time.monotonic() - started:.1f}s: {t.points} points posted in "
                    f"{t.flushes} flushes, {t.stored} stored, {t.duplicates} duplicates"
                    + (f", {t.failed_flushes} failed flushes" if t.failed_flushes else "")
                )
            )

    def _flush(self, sim: Simulation) -> None:
        began = time.monotonic()
        result = sim.flush()
        elapsed_ms = (time.monotonic() - began) * 1000
        if result is None:
            close_old_connections()  # a connection the error left unusable is replaced on next use
            self.stderr.write(f"flush failed ({elapsed_ms:.0f} ms): points kept, retrying at the next flush")
            return
        riders, points, stored, duplicates = result
        self.stdout.write(
            f"flush {sim.totals.flushes}: {riders} riders, {points} points, {stored} stored, "
            f"{duplicates} duplicates ({elapsed_ms:.0f} ms)"
        )

    @staticmethod
    def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
        """Ctrl-C (or SIGTERM from the launcher) ends the loop after the current tick; a second one aborts."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
