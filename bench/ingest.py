"""GPS ingest benchmark: end to end through the production web server, against the raw COPY limit and the
naive per-row baseline, on the same machine and the same table.

    .venv/bin/python bench/ingest.py [--riders 50] [--seconds 20] [--workers 3] [--batches 50,200]

Uses DATABASE_URL / REDIS_URL when set (else the embedded servers of `make services` must be running: it
reads var/run.env). Works in its own database, `<name>_bench`, created and migrated on first use, so the
portal's data is never touched. Steps:
1. seeds N on-duty riders with API tokens;
2. starts gunicorn (the production WSGI server, DEBUG=0) on 127.0.0.1:8099 with --workers sync workers;
3. for each batch size: N concurrent riders (threads with keep-alive connections) post batches of fresh
   points to POST /api/v1/driver/locations/ for --seconds; reports stored points/s (counted in the table,
   not trusted from the responses) and p50/p95/p99 request latency;
4. raw limit: psycopg COPY of the same number of rows straight into the table;
5. naive baseline: a DRF ModelSerializer(many=True) saving one row per point, in-process (no HTTP, so the
   baseline is flattered, not handicapped);
6. table and index size per million points.
Prints a Markdown table. Standard library plus the project's requirements.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    Client,
    LoadResult,
    bench_env,
    database_urls,
    ensure_database,
    http_load,
    percentile,
    setup_django,
    start_server,
)


@dataclass
class Rider:
    id: int
    token: str


def seed_riders(count: int) -> list[Rider]:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from fleet.models import City
    from riders.models import DutyLog, DutyStatus, KycStatus
    from riders.models import Rider as RiderModel

    city, _ = City.objects.get_or_create(
        code="BLR", defaults={"name": "Bengaluru", "center_lat": 12.97, "center_lon": 77.59}
    )
    riders = []
    for i in range(count):
        mobile = f"+9160{i:08d}"
        user, _ = User.objects.get_or_create(username=mobile)
        rider, _created = RiderModel.objects.get_or_create(
            mobile=mobile,
            defaults={"user": user, "name": f"Bench rider {i}", "city": city, "kyc_status": KycStatus.APPROVED},
        )
        if rider.duty_status != DutyStatus.ON:
            RiderModel.objects.filter(pk=rider.pk).update(duty_status=DutyStatus.ON)
            DutyLog.objects.get_or_create(rider=rider, ended_at=None, defaults={"started_at": datetime.now(UTC)})
        token, _ = Token.objects.get_or_create(user=user)
        riders.append(Rider(rider.pk, token.key))
    return riders


class Clock:
    """Hands out strictly increasing recorded_at values per rider (1 ms apart), so every posted point is new.

    Starts after the newest point a rider already has in the bench database (runs accumulate there) and no
    earlier than 50 minutes ago; at these rates a rider's clock stays well behind the server's.
    """

    def __init__(self, start: dict[int, datetime]) -> None:
        self.lock = threading.Lock()
        floor = datetime.now(UTC) - timedelta(minutes=50)
        self.next = {rider_id: max(floor, at + timedelta(milliseconds=1)) for rider_id, at in start.items()}

    def take(self, rider_id: int, count: int) -> list[datetime]:
        with self.lock:
            start = self.next.get(rider_id, datetime.now(UTC) - timedelta(minutes=50))
            self.next[rider_id] = start + timedelta(milliseconds=count)
        return [start + timedelta(milliseconds=i) for i in range(count)]


def newest_points(riders: list[Rider]) -> dict[int, datetime]:
    from django.db.models import Max

    from fleet.models import LocationLog

    rows = (
        LocationLog.objects.filter(rider_id__in=[r.id for r in riders])
        .values("rider_id")
        .annotate(at=Max("recorded_at"))
    )
    return {row["rider_id"]: row["at"] for row in rows}


def batch_body(times: list[datetime]) -> bytes:
    lat, lon = 12.97 + random.random() / 10, 77.59 + random.random() / 10
    points = [
        {
            "lat": round(lat + i * 1e-5, 6),
            "lon": round(lon + i * 1e-5, 6),
            "recorded_at": t.isoformat(),
            "speed": 22.5,
            "heading": 90,
            "accuracy": 5.0,
            "battery": 80,
        }
        for i, t in enumerate(times)
    ]
    return json.dumps({"points": points}).encode()


class Bodies:
    """Request bodies built before the clock starts, so the load generator spends its CPU on sending (it
    shares the machine's two cores with the server and PostgreSQL). Built on the fly once a rider runs out."""

    def __init__(self, riders: list[Rider], batch: int, per_rider: int, clock: Clock) -> None:
        self.batch, self.clock = batch, clock
        self.ready = {r.id: [batch_body(clock.take(r.id, batch)) for _ in range(per_rider)] for r in riders}
        self.built_late = 0

    def next(self, rider_id: int) -> bytes:
        ready = self.ready[rider_id]
        if ready:
            return ready.pop(0)
        self.built_late += 1
        return batch_body(self.clock.take(rider_id, self.batch))


def run_load(riders: list[Rider], bodies: Bodies, seconds: float, interval: float | None) -> LoadResult:
    """Every rider posts its batches to the GPS endpoint: see ``common.http_load``."""
    clients = [Client(r.token, partial(bodies.next, r.id)) for r in riders]
    return http_load(clients, path="/api/v1/driver/locations/", seconds=seconds, interval=interval, ok_status=202)


def count_points() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fleet_locationlog")
        return int(cursor.fetchone()[0])


def raw_copy_rate(riders: list[Rider], rows: int, clock: Clock) -> float:
    from django.db import connection

    per_rider = max(1, rows // len(riders))
    records = []
    for rider in riders:
        for t in clock.take(rider.id, per_rider):
            records.append((rider.id, t, 12.97, 77.59, 22.5, 90, 5.0, 80, t))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        copy_sql = (
            "COPY fleet_locationlog (rider_id, recorded_at, lat, lon, speed_kmh, heading_deg, accuracy_m, "
            "battery_pct, received_at) FROM STDIN"
        )
        with cursor.cursor.copy(copy_sql) as copy:
            for record in records:
                copy.write_row(record)
    return len(records) / (time.perf_counter() - started)


def naive_rate(riders: list[Rider], rows: int, clock: Clock) -> float:
    from rest_framework import serializers

    from fleet.models import LocationLog

    class NaivePoint(serializers.ModelSerializer):
        class Meta:
            model = LocationLog
            fields = ["rider", "recorded_at", "lat", "lon", "speed_kmh", "heading_deg", "accuracy_m", "battery_pct"]

    per_rider = max(1, rows // len(riders))
    started = time.perf_counter()
    stored = 0
    for rider in riders:
        data = [
            {
                "rider": rider.id,
                "recorded_at": t.isoformat(),
                "lat": 12.97,
                "lon": 77.59,
                "speed_kmh": 22.5,
                "heading_deg": 90,
                "accuracy_m": 5.0,
                "battery_pct": 80,
            }
            for t in clock.take(rider.id, per_rider)
        ]
        serializer = NaivePoint(data=data, many=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        stored += len(data)
    return stored / (time.perf_counter() - started)


def size_per_million() -> tuple[float, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT coalesce(sum(pg_relation_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'fleet_locationlog'::regclass
            """
        )
        table_bytes, index_bytes = (float(v) for v in cursor.fetchone())
    points = count_points()
    return table_bytes / points * 1e6 / 2**20, index_bytes / points * 1e6 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--riders", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20, help="length of each load phase")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--batches", default="50,200", help="batch sizes posted back to back")
    parser.add_argument(
        "--steady-interval", type=float, default=1.0, help="seconds between a rider's 200-point batches, steady phase"
    )
    args = parser.parse_args()

    database_url, redis_url = database_urls()
    env = bench_env(database_url, redis_url)
    subprocess.run([sys.executable, "-m", "django", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=env, check=True)
    ensure_database(database_url)
    setup_django(env)
    riders = seed_riders(args.riders)
    clock = Clock(newest_points(riders))
    phases = [(f"HTTP, batches of {b} back to back", int(b), None) for b in args.batches.split(",")]
    steady_rate = args.riders / args.steady_interval
    phases.append(
        (
            f"HTTP, batches of 200, each rider every {args.steady_interval:g} s ({steady_rate:g} req/s)",
            200,
            args.steady_interval,
        )
    )
    rows = []
    server = start_server(env, args.workers)
    try:
        for label, batch, interval in phases:
            # Enough bodies for the phase at up to ~60,000 points/s (or the steady pace), built before it starts.
            per_rider = (
                int(args.seconds / interval) + 2 if interval else int(args.seconds * 60_000 / batch / len(riders)) + 2
            )
            bodies = Bodies(riders, batch, per_rider, clock)
            print(f"{label}: {args.seconds:g} s ...", file=sys.stderr, flush=True)
            before = count_points()
            started = time.monotonic()
            result = run_load(riders, bodies, args.seconds, interval)
            elapsed = time.monotonic() - started
            stored = count_points() - before
            rows.append((label, stored / elapsed, result, stored, bodies.built_late))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print("raw COPY and naive baseline ...", file=sys.stderr, flush=True)
    sample = max(20_000, int(max(r[3] for r in rows) / 2))
    copy_rate = raw_copy_rate(riders, sample, clock)
    naive = naive_rate(riders, min(sample, 5_000), clock)
    table_mb, index_mb = size_per_million()

    print(
        f"\nGPS ingest, {args.riders} concurrent riders, {args.seconds:g} s a phase, gunicorn {args.workers} sync "
        f"workers, DEBUG=0, {datetime.now(UTC):%Y-%m-%d}\n"
    )
    print("| what | points/s stored | p50 ms | p95 ms | p99 ms | requests | non-202 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, rate, result, _, built_late in rows:
        lat = result.latencies_ms
        late = f" ({built_late} bodies built during the run)" if built_late else ""
        print(
            f"| {label}{late} | {rate:,.0f} | {percentile(lat, 50):.1f} | {percentile(lat, 95):.1f} | "
            f"{percentile(lat, 99):.1f} | {len(lat) + result.errors:,} | {result.errors} |"
        )
    print(f"| raw psycopg COPY, one stream, {sample:,} rows | {copy_rate:,.0f} | | | | | |")
    print(f"| naive DRF ModelSerializer(many=True), in-process | {naive:,.0f} | | | | | |")
    best = max(r[1] for r in rows)
    print(f"\nbest end-to-end rate = {best / copy_rate:.0%} of raw COPY, {best / naive:.1f}x the naive baseline")
    print(
        f"size per million points: table {table_mb:,.1f} MiB, indexes {index_mb:,.1f} MiB ({count_points():,} points)"
    )


if __name__ == "__main__":
    main()
