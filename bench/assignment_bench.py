"""Dispatch benchmark: automatic assignment (``orders.assignment.order_assign``) with thousands of on-duty
riders in one city, one caller at a time and from concurrent clients, and a check that no rider was given
more orders than the vehicle carries.

    .venv/bin/python bench/assignment_bench.py [--riders 5000] [--latency-orders 1000] [--orders 3000] [--clients 3]

Uses DATABASE_URL / REDIS_URL like bench/ingest.py, in its own database ``<name>_dispatch_bench`` (created
and migrated on first use) and its own cache key prefix, so the portal's data and live map are never touched;
Celery messages, should any be sent (offers expire by a sweep, not a task each), go to a Redis database of
their own, purged at the end.
Steps:
1. seeds ``--riders`` on-duty, KYC-approved riders in one city (a fifth of them on vehicles that carry two
   orders), each with an open duty log, and places them at random within 8 km of the centre in the city's
   live GEO set;
2. latency: ``--latency-orders`` orders with pickups at random within 6 km of the centre, assigned one after
   another by one caller: the time of each ``order_assign`` call, end to end (lock, GEOSEARCH, the
   eligibility query, the transition with its event and offer, and after commit the pushes);
3. throughput: the orders cleared, then ``--orders`` new ones assigned by ``--clients`` processes at once,
   each with its own database connection: assignments per second over the wall-clock time, and latency;
4. checks: no rider holds more active orders than the vehicle carries, every assigned order has exactly one
   pending offer and it is to the order's rider (exits 1 otherwise).
After each bulk load it runs ``ANALYZE``, as autovacuum would on a live database. The callers, PostgreSQL and
Redis share the machine; the CPU an assignment costs (callers, their PostgreSQL backends, read from /proc) is
printed with the ceiling it sets on this machine's cores. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_env, database_urls, ensure_database, percentile, setup_django

CITY = ("BLR", "Bengaluru", 12.9716, 77.5946)
RIDER_RADIUS_KM = 8.0
PICKUP_RADIUS_KM = 6.0
TWO_ORDER_SHARE = 0.2


def dispatch_env(database_url: str, redis_url: str) -> dict[str, str]:
    from urllib.parse import urlsplit, urlunsplit

    broker = urlunsplit(urlsplit(redis_url)._replace(path="/5"))
    return {
        **bench_env(database_url, redis_url),
        "CACHE_KEY_PREFIX": os.environ.get("BENCH_CACHE_PREFIX", "fleetops") + "-dispatch-bench",
        "CELERY_BROKER_URL": broker,
        "DB_POOL_MAX_SIZE": "0",  # one persistent connection per process: the clients are processes
        "ORDER_AUTO_ASSIGN": "0",
        "ORDER_ASSIGN_RADIUS_KM": "5",
        "LIVE_POSITION_TTL_S": "3600",
    }


def random_point(rng: random.Random, radius_km: float) -> tuple[float, float]:
    """Uniform over a disc around the city centre."""
    distance = radius_km * math.sqrt(rng.random())
    bearing = rng.random() * 2 * math.pi
    lat = CITY[2] + distance * math.cos(bearing) / 111.195
    lon = CITY[3] + distance * math.sin(bearing) / (111.195 * math.cos(math.radians(CITY[2])))
    return lat, lon


def seed_riders(count: int) -> tuple[int, list[int]]:
    """The city and its ``count`` riders (created once, then reused), all on duty with a fresh duty log."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from fleet.models import City, Vehicle, VehicleKind
    from riders.models import DutyLog, DutyStatus, KycStatus, Rider

    city, _ = City.objects.get_or_create(
        code=CITY[0], defaults={"name": CITY[1], "center_lat": CITY[2], "center_lon": CITY[3]}
    )
    have = Rider.objects.filter(city=city).count()
    if have < count:
        now = timezone.now()
        mobiles = [f"+9170{i:08d}" for i in range(have, count)]
        User.objects.bulk_create([User(username=m, password="!") for m in mobiles], ignore_conflicts=True)
        users = dict(User.objects.filter(username__in=mobiles).values_list("username", "pk"))
        riders = []
        for i, mobile in zip(range(have, count), mobiles, strict=True):
            vehicle = None
            if i % round(1 / TWO_ORDER_SHARE) == 0:
                vehicle = Vehicle.objects.create(
                    kind=VehicleKind.BIKE, registration=f"KA99D{i:06d}", city=city, order_capacity=2
                )
            riders.append(
                Rider(
                    user_id=users[mobile],
                    mobile=mobile,
                    name=f"Dispatch rider {i}",
                    city=city,
                    kyc_status=KycStatus.APPROVED,
                    duty_status=DutyStatus.ON,
                    duty_changed_at=now,
                    vehicle=vehicle,
                )
            )
        Rider.objects.bulk_create(riders, batch_size=1000)
    rider_ids = list(Rider.objects.filter(city=city).order_by("pk").values_list("pk", flat=True)[:count])
    # A duty log opened an hour ago for everyone: hours of service are judged, and nobody is near the limit.
    now = timezone.now()
    DutyLog.objects.filter(rider_id__in=rider_ids).delete()
    DutyLog.objects.bulk_create(
        [DutyLog(rider_id=rider_id, started_at=now - timedelta(hours=1)) for rider_id in rider_ids], batch_size=2000
    )
    Rider.objects.filter(pk__in=rider_ids).update(duty_status=DutyStatus.ON)
    return city.pk, rider_ids


def place_riders(rider_ids: list[int]) -> None:
    from django.conf import settings

    from fleet import live

    rng = random.Random(5)
    now = datetime.now(UTC)
    for rider_id in rider_ids:
        lat, lon = random_point(rng, RIDER_RADIUS_KM)
        live.position_advance(
            rider_id=rider_id,
            city_code=CITY[0],
            lat=lat,
            lon=lon,
            recorded_at=now,
            speed_kmh=None,
            ttl_s=settings.LIVE_POSITION_TTL_S,
            is_on_duty=True,
        )


def orders_clear() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderoffer")
        cursor.execute("DELETE FROM orders_orderevent")
        cursor.execute("DELETE FROM orders_order")


def orders_create(city_id: int, count: int, seed: int) -> list[int]:
    from orders.models import Order

    rng = random.Random(seed)
    stamp = f"{time.time_ns():x}"
    orders = []
    for i in range(count):
        lat, lon = random_point(rng, PICKUP_RADIUS_KM)
        drop_lat, drop_lon = random_point(rng, PICKUP_RADIUS_KM)
        orders.append(
            Order(
                external_ref=f"DSP-{stamp}-{i}",
                city_id=city_id,
                pickup_lat=lat,
                pickup_lon=lon,
                pickup_address="bench pickup",
                drop_lat=drop_lat,
                drop_lon=drop_lon,
                drop_address="bench drop",
                delivery_fee_paise=4500,
                cod_amount_paise=0 if i % 3 else 25_000,
            )
        )
    ids = [order.pk for order in Order.objects.bulk_create(orders, batch_size=1000)]
    analyze()
    return ids


def analyze() -> None:
    """Planner statistics as autovacuum keeps them on a live database (a bulk load outruns it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    assigned: int = 0
    no_rider: int = 0
    errors: list[str] = field(default_factory=list)
    started: float = math.inf
    ended: float = 0.0
    caller_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    redis_cpu_s: float | None = None
    machine_cpu_s: float | None = None

    def add(self, other: Run) -> None:
        self.latencies_ms += other.latencies_ms
        self.assigned += other.assigned
        self.no_rider += other.no_rider
        self.errors += other.errors
        self.started = min(self.started, other.started)
        self.ended = max(self.ended, other.ended)
        self.caller_cpu_s += other.caller_cpu_s
        self.postgres_cpu_s += other.postgres_cpu_s


def assign_all(order_ids: list[int]) -> Run:
    """Assigns each order in turn, timing each call (wall clock, the caller's view)."""
    from orders.assignment import NoRiderAvailable, order_assign

    backend_before = backend_cpu_s()
    run = Run(started=time.time())
    cpu_before = time.process_time()
    for order_id in order_ids:
        began = time.perf_counter()
        try:
            order_assign(order_id=order_id, actor=None)
            run.assigned += 1
        except NoRiderAvailable:
            run.no_rider += 1
        except Exception as exc:  # reported, not fatal: the check below decides
            run.errors.append(repr(exc))
        run.latencies_ms.append((time.perf_counter() - began) * 1000)
    run.ended = time.time()
    run.caller_cpu_s = time.process_time() - cpu_before
    run.postgres_cpu_s = backend_cpu_s() - backend_before
    return run


def backend_cpu_s() -> float:
    """CPU seconds of this process's PostgreSQL backend so far (the server runs on this machine: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s() -> float:
    from django_redis import get_redis_connection

    info = get_redis_connection("default").info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy (all processes, all cores) so far: Linux's /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def client_main(env: dict[str, str], order_ids: list[int], start_at: float, results: multiprocessing.Queue) -> None:
    """One concurrent client: its own process, database connection and Redis connections."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection
    from django_redis import get_redis_connection

    connection.ensure_connection()
    get_redis_connection("default").ping()
    time.sleep(max(0.0, start_at - time.time()))
    results.put(assign_all(order_ids))


def concurrent_run(env: dict[str, str], order_ids: list[int], clients: int) -> Run:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 5  # every client set up and connected before the first call
    processes = [
        context.Process(target=client_main, args=(env, order_ids[i::clients], start_at, results))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at - time.time()))
    busy_before, redis_before = machine_busy_s(), redis_cpu_s()
    total = Run()
    for _ in processes:
        total.add(results.get(timeout=600))
    busy_after, total.redis_cpu_s = machine_busy_s(), redis_cpu_s() - redis_before
    for process in processes:
        process.join(timeout=60)
    if busy_before is not None and busy_after is not None:
        total.machine_cpu_s = busy_after - busy_before
    return total


@dataclass(frozen=True)
class Check:
    over_capacity: int
    riders_busy: int
    slots: int
    assigned_orders: int
    pending_offers: int
    offers_mismatched: int

    @property
    def ok(self) -> bool:
        return self.over_capacity == 0 and self.offers_mismatched == 0 and self.assigned_orders == self.pending_offers


def check(rider_ids: list[int]) -> Check:
    """Counted in the database, independent of what the callers were told."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE n > cap), count(*)
            FROM (
                SELECT o.rider_id, count(*) AS n, coalesce(v.order_capacity, 1) AS cap
                FROM orders_order o
                JOIN riders_rider r ON r.id = o.rider_id
                LEFT JOIN fleet_vehicle v ON v.id = r.vehicle_id
                WHERE o.status IN ('ASSIGNED', 'ACCEPTED', 'PICKED_UP')
                GROUP BY o.rider_id, v.order_capacity
            ) per_rider
            """
        )
        over_capacity, riders_busy = cursor.fetchone()
        cursor.execute(
            """
            SELECT coalesce(sum(coalesce(v.order_capacity, 1)), 0)
            FROM riders_rider r LEFT JOIN fleet_vehicle v ON v.id = r.vehicle_id
            WHERE r.id = ANY(%s)
            """,
            [rider_ids],
        )
        (slots,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order WHERE status = 'ASSIGNED'")
        (assigned,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_orderoffer WHERE status = 'PENDING'")
        (pending,) = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM orders_order o
            WHERE o.status = 'ASSIGNED' AND 1 <> (
                SELECT count(*) FROM orders_orderoffer f
                WHERE f.order_id = o.id AND f.status = 'PENDING' AND f.rider_id = o.rider_id
            )
            """
        )
        (mismatched,) = cursor.fetchone()
    return Check(over_capacity, riders_busy, int(slots), assigned, pending, mismatched)


def broker_purge() -> int:
    from config.celery import app

    return app.control.purge() or 0


def row(label: str, run: Run, elapsed: float | None) -> str:
    lat = run.latencies_ms
    rate = f"{run.assigned / elapsed:,.0f}" if elapsed else ""
    return (
        f"| {label} | {run.assigned:,} | {run.no_rider:,} | {len(run.errors)} | {rate} | {percentile(lat, 50):.1f} | "
        f"{percentile(lat, 95):.1f} | {percentile(lat, 99):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--riders", type=int, default=5000)
    parser.add_argument("--latency-orders", type=int, default=1000, help="assigned one at a time")
    parser.add_argument("--orders", type=int, default=3000, help="assigned by the concurrent clients")
    parser.add_argument("--clients", type=int, default=3, help="concurrent client processes")
    args = parser.parse_args()

    database_url, redis_url = database_urls("_dispatch_bench")
    env = dispatch_env(database_url, redis_url)
    ensure_database(database_url)
    setup_django(env)
    from django.core.cache import cache
    from django.db import connections

    print(f"seeding {args.riders:,} riders ...", file=sys.stderr, flush=True)
    cache.delete_pattern("*")  # type: ignore[attr-defined]  # this bench's prefix only
    city_id, rider_ids = seed_riders(args.riders)
    place_riders(rider_ids)

    print(f"latency: {args.latency_orders:,} orders, one caller ...", file=sys.stderr, flush=True)
    orders_clear()
    warm = orders_create(city_id, 50, seed=1)
    assign_all(warm)  # connections, caches and code paths warm before anything is timed
    orders_clear()
    sequential = assign_all(orders_create(city_id, args.latency_orders, seed=2))
    sequential_check = check(rider_ids)

    print(f"throughput: {args.orders:,} orders, {args.clients} clients ...", file=sys.stderr, flush=True)
    orders_clear()
    order_ids = orders_create(city_id, args.orders, seed=3)
    connections.close_all()
    concurrent = concurrent_run(env, order_ids, args.clients)
    wall = concurrent.ended - concurrent.started
    final = check(rider_ids)
    purged = broker_purge()

    print(
        f"\nAutomatic assignment, {len(rider_ids):,} on-duty riders in one city (riders within {RIDER_RADIUS_KM:g} "
        f"km of the centre, pickups within {PICKUP_RADIUS_KM:g} km, radius 5 km, {TWO_ORDER_SHARE:.0%} of riders "
        f"carry two orders), {datetime.now(UTC):%Y-%m-%d}\n"
    )
    print("| what | assigned | no rider | errors | assignments/s | p50 ms | p95 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(row("one caller, one order after another", sequential, sum(sequential.latencies_ms) / 1000))
    print(row(f"{args.clients} concurrent client processes", concurrent, wall))
    for label, result in (("after the one-caller run", sequential_check), ("after the concurrent run", final)):
        print(
            f"\ncheck {label}: {result.over_capacity} riders over capacity "
            f"({result.riders_busy:,} busy riders, {result.slots:,} order slots in the fleet); "
            f"{result.assigned_orders:,} assigned orders, {result.pending_offers:,} pending offers, "
            f"{result.offers_mismatched} assigned orders without exactly one pending offer to their rider: "
            f"{'OK' if result.ok else 'FAILED'}"
        )
    if concurrent.assigned:
        per = 1000 / concurrent.assigned
        cores = os.cpu_count() or 1
        own = (concurrent.caller_cpu_s + concurrent.postgres_cpu_s) * per
        print(
            f"\nCPU per assignment in the concurrent run: {concurrent.caller_cpu_s * per:.1f} ms in the callers + "
            f"{concurrent.postgres_cpu_s * per:.1f} ms in their PostgreSQL backends = {own:.1f} ms: {cores} cores "
            f"make at most {cores * 1000 / own:,.0f} assignments/s at that cost. Redis, a server others share, "
            f"spent {(concurrent.redis_cpu_s or 0.0) * per:.1f} ms per assignment on everyone's commands."
        )
        if concurrent.machine_cpu_s is not None:
            print(
                f"The machine was busy {concurrent.machine_cpu_s / (wall * cores):.0%} of {cores} cores over the run, "
                f"{concurrent.machine_cpu_s * per:.1f} ms per assignment (the difference is other load)."
            )
    errors = sequential.errors + concurrent.errors
    if errors:
        print(f"\nerrors ({len(errors)}), first: {errors[0]}")
    print(f"({purged} scheduled offer expiries purged from the bench broker)")
    if not (sequential_check.ok and final.ok) or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
