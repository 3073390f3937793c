"""Analytics benchmark: the materialized views over a large generated history, and the cached stats endpoint.

    .venv/bin/python bench/analytics_bench.py [--orders 1000000] [--points 20000000] [--riders 5000]
                                              [--seconds 15] [--readers 50] [--workers 3]

Uses DATABASE_URL / REDIS_URL like the other benchmarks, in its own database ``<name>_analytics_bench``.
1. Generates the history inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``; nothing crosses
   the wire): 5 cities, ``--riders`` riders, ``--orders`` orders over 180 days (a DELIVERED event, an offer and
   an earning in the ledger for each order that has a rider, a rating for 30% of deliveries), 35 days of duty
   stretches, 180 days of rider distances, COD balances, and ``--points`` GPS points over the last 30 days in
   the monthly location-log partitions (``fleet.partitions`` creates the months). Kept between runs: a second
   run with the same sizes skips straight to the measurements.
2. Times each view's ``analytics.services.view_refresh`` (REFRESH ... CONCURRENTLY, as beat runs it).
3. Starts gunicorn (DEBUG=0, ``--workers`` sync workers) and has ``--readers`` staff clients read
   ``GET /api/v1/dashboard/stats/?city=`` on keep-alive connections, back to back and then each one read every
   ``--interval`` seconds: once with the cache warm (hits), once with a thread replacing the view's cache
   generation every millisecond (nearly every read a miss: Redis, then the view, then Redis). Latencies are
   split by the ``X-Cache`` each answer carried. Each phase also reports the CPU time per answer spent by the
   gunicorn processes and by the bench database's PostgreSQL backends (from /proc: judge an optimisation by
   these when others share the machine), and, below the table, by this load generator and by Redis (whose
   figure counts every client of the server, others' included).
4. Runs the stats view's own query live (``pg_get_viewdef``, for one city), without the view: one caller,
   then ``--readers`` concurrent callers, each with its own connection.
Prints Markdown tables with the machine's load average at each measurement (others may share the CPU).
``--http-only`` runs step 3 alone (the history must be there), e.g. to compare ``--workers`` counts.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from common import (
    PORT,
    bench_env,
    database_urls,
    ensure_database,
    exchange,
    paced,
    percentile,
    setup_django,
    start_server,
)

CITIES = (("BLR", "Bengaluru", 12.97, 77.59), ("MUM", "Mumbai", 19.07, 72.87), ("DEL", "Delhi", 28.61, 77.21),
          ("HYD", "Hyderabad", 17.38, 78.48), ("CHE", "Chennai", 13.08, 80.27))  # fmt: skip
STATS = "/api/v1/dashboard/stats/?city=BLR"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def step(label: str, cursor: Any, statement: str, params: Any = ()) -> None:
    started = time.perf_counter()
    cursor.execute(statement, params)  # always with parameters: "%%" is then "%"
    print(f"  {label}: {cursor.rowcount:,} rows, {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def generate(*, riders: int, orders: int, points: int) -> None:
    """The history, by SQL inside PostgreSQL. Skipped when the database already holds these sizes."""
    from django.db import connection

    from fleet.models import City
    from fleet.partitions import location_partitions_ensure, months_shift

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM orders_order), (SELECT count(*) FROM fleet_locationlog)")
        have_orders, have_points = cursor.fetchone()
    if have_orders >= orders and have_points >= points:
        print(f"history already there: {have_orders:,} orders, {have_points:,} points", file=sys.stderr)
        return
    if have_orders or have_points:
        raise SystemExit("a partial history is in the bench database: drop it (DROP DATABASE ..._analytics_bench)")
    started = time.perf_counter()
    for code, name, lat, lon in CITIES:
        City.objects.get_or_create(code=code, defaults={"name": name, "center_lat": lat, "center_lon": lon})
    from django.utils import timezone

    now = timezone.now()
    # Partitions for the months the points fall in (the current one, and the last one when 30 days reach it).
    location_partitions_ensure(now=months_shift(now, -1))
    location_partitions_ensure(now=now)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        step(
            "users",
            cursor,
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                      is_active, date_joined)
               SELECT '!', false, 'bench-rider-' || g, '', '', '', false, true, now()
               FROM generate_series(1, %s) AS g""",
            [riders],
        )
        step(
            "riders",
            cursor,
            """INSERT INTO riders_rider (user_id, mobile, name, city_id, status, kyc_status, kyc_reviewed_at,
                                         kyc_rejection_reason, duty_status, duty_changed_at, language,
                                         emergency_contact_name, emergency_contact_mobile, suspension_reason,
                                         created_at, updated_at)
               SELECT u.id, '+9190' || lpad(g::text, 8, '0'), 'Rider ' || g,
                      (SELECT id FROM fleet_city ORDER BY id OFFSET (g %% 5) LIMIT 1),
                      'ACTIVE', 'APPROVED', now(), '', CASE WHEN g %% 5 = 0 THEN 'ON' ELSE 'OFF' END, now(), 'en',
                      '', '', '', now() - interval '200 days', now()
               FROM generate_series(1, %s) AS g
               JOIN auth_user AS u ON u.username = 'bench-rider-' || g""",
            [riders],
        )
        cursor.execute("CREATE TEMP TABLE bench_rider AS SELECT row_number() OVER (ORDER BY id) AS k, id, city_id "
                       "FROM riders_rider")  # fmt: skip
        cursor.execute("CREATE UNIQUE INDEX ON bench_rider (k)")
        # Orders over 180 days: the last 3 hours' still in flight, older ones delivered (88%), cancelled, failed.
        step(
            "orders",
            cursor,
            """INSERT INTO orders_order (external_ref, status, pickup_lat, pickup_lon, pickup_address, drop_lat,
                                         drop_lon, drop_address, delivery_fee_paise, cod_amount_paise, metadata,
                                         delivery_otp, tracking_token, is_flagged, cancel_reason, failure_reason,
                                         created_at, updated_at, assigned_at, accepted_at, picked_up_at,
                                         delivered_at, closed_at, city_id, rider_id, intake_hash, offer_attempts,
                                         proof_method, proof_photo)
               SELECT 'AB-' || g, s.status, 12.97, 77.59, 'pickup', 12.93, 77.62, 'drop', 4000 + (g %% 40) * 100,
                      CASE WHEN g %% 3 = 0 THEN 25000 ELSE 0 END, '{}', '1234', 'bench-' || g, false,
                      CASE WHEN s.status = 'CANCELLED' THEN 'bench' ELSE '' END,
                      CASE WHEN s.status = 'FAILED' THEN 'bench' ELSE '' END,
                      s.created_at, s.created_at,
                      CASE WHEN s.status <> 'CREATED' THEN s.created_at + interval '2 minutes' END,
                      CASE WHEN s.status IN ('ACCEPTED', 'PICKED_UP', 'DELIVERED')
                           THEN s.created_at + interval '3 minutes' END,
                      CASE WHEN s.status IN ('PICKED_UP', 'DELIVERED') THEN s.created_at + interval '12 minutes' END,
                      CASE WHEN s.status = 'DELIVERED' THEN s.created_at + s.took END,
                      CASE WHEN s.status IN ('CANCELLED', 'FAILED') THEN s.created_at + interval '20 minutes' END,
                      r.city_id, CASE WHEN s.status <> 'CREATED' THEN r.id END, '', 0, '', ''
               FROM generate_series(1, %(orders)s) AS g
               CROSS JOIN LATERAL (
                   SELECT now() - random() * interval '180 days' AS created_at, random() AS u,
                          interval '15 minutes' + random() * interval '45 minutes' AS took,
                          1 + (hashint4(g) & 2147483647) %% %(riders)s AS k
               ) AS pick
               CROSS JOIN LATERAL (
                   SELECT pick.created_at, pick.took, pick.k,
                          CASE
                              WHEN pick.created_at > now() - interval '3 hours' THEN
                                  (ARRAY['CREATED', 'ASSIGNED', 'ACCEPTED', 'PICKED_UP', 'DELIVERED'])
                                      [1 + floor(pick.u * 5)::int]
                              WHEN pick.u < 0.88 THEN 'DELIVERED'
                              WHEN pick.u < 0.95 THEN 'CANCELLED'
                              ELSE 'FAILED'
                          END AS status
               ) AS s
               JOIN bench_rider AS r ON r.k = s.k""",
            {"orders": orders, "riders": riders},
        )
        step(
            "delivery events",
            cursor,
            """INSERT INTO orders_orderevent (from_status, to_status, note, occurred_at, order_id, rider_id)
               SELECT 'PICKED_UP', 'DELIVERED', '', delivered_at, id, rider_id
               FROM orders_order WHERE status = 'DELIVERED'""",
        )
        step(
            "offers",
            cursor,
            """INSERT INTO orders_orderoffer (status, offered_at, expires_at, answered_at, order_id, rider_id)
               SELECT CASE WHEN status = 'ASSIGNED' THEN 'PENDING' ELSE 'ACCEPTED' END, created_at,
                      created_at + interval '1 minute', created_at + interval '30 seconds', id, rider_id
               FROM orders_order WHERE rider_id IS NOT NULL""",
        )
        step(
            "ratings",
            cursor,
            """INSERT INTO riders_rating (stars, comment, created_at, order_id, rider_id)
               SELECT 1 + (hashint4(id::int) & 2147483647) %% 5, '', delivered_at + interval '1 hour', id, rider_id
               FROM orders_order WHERE status = 'DELIVERED' AND id %% 10 < 3""",
        )
        step(
            "earnings (ledger)",
            cursor,
            """INSERT INTO wallet_ledgerentry (rider_id, account, entry_type, amount_paise, idempotency_key, memo,
                                               order_id, created_at)
               SELECT rider_id, 'WALLET', 'EARNING', delivery_fee_paise, 'earning:' || id, '', id, delivered_at
               FROM orders_order WHERE status = 'DELIVERED'""",
        )
        step(
            "balances",
            cursor,
            """INSERT INTO wallet_balance (rider_id, wallet_paise, cod_paise, entry_count, updated_at)
               SELECT r.id, coalesce(e.total, 0), -((r.id %% 7) * 10000), coalesce(e.n, 0), now()
               FROM riders_rider AS r
               LEFT JOIN (SELECT rider_id, sum(amount_paise) AS total, count(*) AS n
                          FROM wallet_ledgerentry GROUP BY rider_id) AS e ON e.rider_id = r.id""",
        )
        step(
            "duty stretches",
            cursor,
            """INSERT INTO riders_dutylog (started_at, ended_at, end_reason, rider_id)
               SELECT d.day + interval '9 hours', d.day + interval '17 hours', 'MANUAL', r.id
               FROM riders_rider AS r
               CROSS JOIN generate_series(date_trunc('day', now()) - interval '35 days',
                                          date_trunc('day', now()) - interval '1 day', interval '1 day') AS d(day)
               UNION ALL
               SELECT now() - interval '2 hours', NULL, '', id FROM riders_rider WHERE duty_status = 'ON'""",
        )
        step(
            "rider distances",
            cursor,
            """INSERT INTO fleet_riderdaydistance (rider_id, day, distance_m, points, computed_at)
               SELECT r.id, d.day::date, 20000 + (hashint4(r.id::int + d.day::date - date '2000-01-01') & 65535),
                      2000, now()
               FROM riders_rider AS r
               CROSS JOIN generate_series(current_date - 179, current_date, interval '1 day') AS d(day)""",
        )
        # GPS points: every rider, evenly over the last 30 days (one point every 30 days / per-rider count).
        per_rider = max(1, points // riders)
        step(
            "location points",
            cursor,
            """INSERT INTO fleet_locationlog (rider_id, recorded_at, lat, lon, speed_kmh, received_at)
               SELECT r.id, now() - interval '30 days' + (i * %(spacing)s) * interval '1 second',
                      12.9 + (i %% 1000) * 0.0001, 77.5 + (i %% 700) * 0.0001, 20, now()
               FROM riders_rider AS r
               CROSS JOIN generate_series(1, %(per_rider)s) AS i""",
            {"per_rider": per_rider, "spacing": 30 * 86400 / per_rider},
        )
        cursor.execute("ANALYZE")
    print(f"history generated in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def time_refreshes(runs: int) -> list[tuple[str, float, float, int]]:
    from django.db import connection

    from analytics.models import MaterializedView
    from analytics.services import view_refresh

    rows = []
    for view in MaterializedView:
        durations = [view_refresh(view=view).duration_ms for _ in range(runs)]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(view.table)}")  # noqa: S608 (an enum)
            count = cursor.fetchone()[0]
        rows.append((view.value, statistics.median(durations), max(durations), count))
        print(f"  refresh {view.value}: {durations}", file=sys.stderr, flush=True)
    return rows


@dataclass
class Reads:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"HIT": [], "MISS": []})
    errors: int = 0
    requests: int = 0


def read_load(token: str, *, readers: int, seconds: float, interval: float | None = None) -> Reads:
    """``readers`` keep-alive clients reading the stats for ``seconds``: back to back (``interval`` None: the
    server's throughput, latency mostly queueing) or each one read every ``interval`` seconds from a random
    offset (a steady load: the latency a reader sees when the server keeps up)."""
    result = Reads()
    lock = threading.Lock()
    began = time.monotonic()
    deadline = began + seconds

    def reader() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Token {token}"}
        for _ in paced(began, deadline, interval):
            started = time.perf_counter()
            answer = exchange(connection, "GET", STATS, headers=headers)
            status, cache = (answer[0].status, answer[0].getheader("X-Cache", "")) if answer is not None else (0, "")
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                result.requests += 1
                if status == 200 and cache in result.latencies_ms:
                    result.latencies_ms[cache].append(elapsed)
                else:
                    result.errors += 1
        connection.close()

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far: the web server's processes, each PostgreSQL backend of the bench database (by pid),
    Redis (all its clients), this process (the load generator)."""

    server_s: float
    backends_s: dict[int, float]
    redis_s: float
    client_s: float

    def per_answer_ms(self, later: CpuSample, answers: int) -> dict[str, float]:
        """Milliseconds of CPU per answer between this sample and ``later`` (backends present in both)."""
        both = later.backends_s.keys() & self.backends_s.keys()
        backends = sum(later.backends_s[pid] - self.backends_s[pid] for pid in both)
        per = 1000 / max(answers, 1)
        return {
            "server": (later.server_s - self.server_s) * per,
            "postgres": backends * per,
            "redis": (later.redis_s - self.redis_s) * per,
            "client": (later.client_s - self.client_s) * per,
        }


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(server: Any, database_url: str) -> CpuSample:
    import psycopg
    from django_redis import get_redis_connection

    root = psutil.Process(server.pid)
    server_s = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        server_s += times.user + times.system
    with psycopg.connect(database_url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]  # fmt: skip
    backends = {pid: cpu for pid in pids if (cpu := _proc_cpu_s(pid)) is not None}
    info = get_redis_connection("default").info("cpu")
    redis_s = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return CpuSample(server_s=server_s, backends_s=backends, redis_s=redis_s, client_s=time.process_time())


def live_query(*, readers: int, seconds: float, database_url: str) -> tuple[list[float], list[float]]:
    """The stats view's query run live for one city: alone (20 runs), then by ``readers`` callers at once."""
    import psycopg
    from django.conf import settings

    with psycopg.connect(database_url) as conn:
        (definition,) = conn.execute("SELECT pg_get_viewdef('analytics_dashboard_stats'::regclass)").fetchone() or ("",)
        (city_id,) = conn.execute("SELECT id FROM fleet_city WHERE code = 'BLR'").fetchone() or (None,)
    statement = f"SELECT * FROM ({definition.rstrip().rstrip(';')}) AS live WHERE city_id = %s"  # noqa: S608
    guc = "SELECT set_config('analytics.time_zone', %s, false), set_config('analytics.on_time_s', '2700', false)"

    def run(conn: Any) -> float:
        started = time.perf_counter()
        conn.execute(statement, [city_id]).fetchall()
        return (time.perf_counter() - started) * 1000

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(guc, [settings.TIME_ZONE])
        run(conn)
        alone = [run(conn) for _ in range(20)]
    together: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def caller() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(guc, [settings.TIME_ZONE])
            while time.monotonic() < deadline:
                elapsed = run(conn)
                with lock:
                    together.append(elapsed)

    threads = [threading.Thread(target=caller) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return alone, together


def staff_token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=20_000_000)
    parser.add_argument("--riders", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a steady reader's reads")
    parser.add_argument("--database-suffix", default="_analytics_bench")
    parser.add_argument("--http-only", action="store_true", help="only the stats endpoint's reads (step 3)")
    args = parser.parse_args()

    database_url, redis_url = database_urls(args.database_suffix)
    ensure_database(database_url)
    env = {**bench_env(database_url, redis_url), "RATE_LIMIT_PARTNER": "10000000/m"}
    setup_django(env)
    generate(riders=args.riders, orders=args.orders, points=args.points)

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM orders_order), (SELECT count(*) FROM fleet_locationlog),"
            " (SELECT count(*) FROM riders_rider), (SELECT count(*) FROM wallet_ledgerentry),"
            " (SELECT count(*) FROM orders_orderevent)"
        )
        n_orders, n_points, n_riders, n_entries, n_events = cursor.fetchone()
    print(
        f"\nHistory: {n_orders:,} orders, {n_points:,} GPS points, {n_riders:,} riders, {n_entries:,} ledger "
        f"entries, {n_events:,} order events\n"
    )

    if not args.http_only:
        print(
            "| view | rows | refresh median ms | slowest ms | load average (1/5/15 min) |\n"
            "| --- | --- | --- | --- | --- |"
        )
        for name, median, slowest, count in time_refreshes(args.refreshes):
            print(f"| `{name}` | {count:,} | {median:,.0f} | {slowest:,.0f} | {load()} |")

    from django.utils import timezone

    from analytics.cache import view_invalidate
    from analytics.models import MaterializedView
    from fleet.distance import compute_statement

    distance_ms = None
    if not args.http_only:
        with connection.cursor() as cursor:  # what the 15-minute distance job spares every stats read
            statement, params = compute_statement(day=timezone.localdate())
            started = time.perf_counter()
            cursor.execute("BEGIN")
            cursor.execute(statement, params)
            cursor.execute("ROLLBACK")
            distance_ms = (time.perf_counter() - started) * 1000

    token = staff_token()
    connection.close()
    server = start_server(env, args.workers)
    try:
        print(f"\n| stats endpoint, {args.readers} readers, {args.workers} workers | answers | req/s | p50 ms | "
              "p95 ms | p99 ms | errors | server CPU ms/answer | PostgreSQL CPU ms/answer | load average |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
        read_load(token, readers=args.readers, seconds=2)  # warm-up: connections, the cache
        stop = threading.Event()
        cpu_notes: list[str] = []

        def invalidate() -> None:
            while not stop.is_set():
                view_invalidate(MaterializedView.DASHBOARD_STATS)
                time.sleep(0.001)

        for pacing, interval in (("back to back", None), (f"each reader every {args.interval:g} s", args.interval)):
            for mode in ("cache warm", "generation replaced every ms"):
                invalidator = threading.Thread(target=invalidate)
                if mode != "cache warm":
                    stop.clear()
                    invalidator.start()
                before = cpu_sample(server, database_url)
                try:
                    reads = read_load(token, readers=args.readers, seconds=args.seconds, interval=interval)
                finally:
                    stop.set()
                    if invalidator.is_alive():
                        invalidator.join()
                cpu = before.per_answer_ms(cpu_sample(server, database_url), reads.requests)
                row_load = load()
                for cache, latencies in reads.latencies_ms.items():
                    if latencies:
                        print(f"| {pacing}, {mode}: {cache} | {len(latencies):,} | "
                              f"{len(latencies) / args.seconds:,.0f} | {percentile(latencies, 50):.1f} | "
                              f"{percentile(latencies, 95):.1f} | {percentile(latencies, 99):.1f} | "
                              f"{reads.errors} | {cpu['server']:.2f} | {cpu['postgres']:.2f} | {row_load} |",
                              flush=True)  # fmt: skip
                cpu_notes.append(
                    f"{pacing}, {mode}: load generator {cpu['client']:.2f} ms, Redis {cpu['redis']:.3f} ms"
                )
        print("\nCPU per answer outside the web server (a phase's answers, cached or not, share it): "
              + "; ".join(cpu_notes) + " (Redis: every client of the server, others' included).")  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    if args.http_only:
        return
    alone, together = live_query(readers=args.readers, seconds=args.seconds, database_url=database_url)
    row_load = load()
    print("\n| stats computed live, no view (one city) | runs | p50 ms | p95 ms | p99 ms | load average |\n"
          "| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    print(f"| one caller | {len(alone)} | {percentile(alone, 50):.1f} | {percentile(alone, 95):.1f} | "
          f"{percentile(alone, 99):.1f} | {row_load} |")  # fmt: skip
    print(f"| {args.readers} concurrent callers | {len(together):,} | {percentile(together, 50):.1f} | "
          f"{percentile(together, 95):.1f} | {percentile(together, 99):.1f} | {row_load} |")  # fmt: skip
    print(f"\nDistance today from the raw GPS points (fleet.distance, all riders, rolled back): {distance_ms:,.0f} ms")


if __name__ == "__main__":
    main()
