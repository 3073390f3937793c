"""Wallet benchmark: postings per second sustained through the posting primitive, with latency percentiles, and
the nightly reconciliation's time per million ledger entries.

    .venv/bin/python bench/wallet_bench.py [--seconds 30] [--workers 6] [--riders 2000] [--ledger-entries 1000000]

Uses DATABASE_URL / REDIS_URL like bench/ingest.py, in its own database ``<name>_wallet_bench`` (created and
migrated on first use) and its own cache key prefix, so the portal's wallet is never touched. Steps:
1. seeds ``--riders`` riders, each with a balance row and an opening credit;
2. postings: ``--workers`` processes (each its own persistent database connection and Redis connection) call
   ``wallet.services.ledger_entry_post`` back to back for ``--seconds`` (after 0.2 s of warm-up postings,
   not counted), each posting its own transaction: four credits (INCENTIVE) to one debit (WITHDRAWAL hold)
   on riders picked at random, every posting with a fresh idempotency key. Each call is the whole primitive:
   the balance row lock, the key check, the insert (and its key-claiming trigger), the balance update, the
   commit, and after it the Redis cache invalidation. Reported: postings/s over the whole run, the slowest
   and the median one-second window (sustained), per-posting latency p50/p95/p99, and the machine's CPU time
   per posting (all cores, every process: workers, PostgreSQL, Redis, anything else running). Then the same
   with every worker on ``--hot-riders`` riders (postings of one rider serialise on its balance row lock:
   the contended case);
3. the ledger is filled (SQL ``INSERT ... SELECT``, balances moved to match) up to ``--ledger-entries`` if it
   holds fewer, then ``wallet.services.ledger_reconcile`` runs ``--reconcile-runs`` times over all of it: time
   per run and per million entries, and the drift it found (must be 0).
The workers, PostgreSQL and Redis share the machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_env, database_urls, ensure_database, percentile, setup_django

OPENING_PAISE = 1_000_000_00
CREDIT_PAISE = 45_00
DEBIT_PAISE = 30_00


def wallet_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **bench_env(database_url, redis_url),
        "CACHE_KEY_PREFIX": "fleetops-wallet-bench",
        "DB_POOL_MAX_SIZE": "0",  # one persistent connection per process: the workers are processes
    }


def seed_riders(count: int) -> list[int]:
    from django.contrib.auth.models import User

    from fleet.models import City
    from riders.models import Rider
    from wallet.models import EntryType
    from wallet.services import ledger_entry_post

    city, _ = City.objects.get_or_create(
        code="BLR", defaults={"name": "Bengaluru", "center_lat": 12.97, "center_lon": 77.59}
    )
    existing = {r.mobile: r.pk for r in Rider.objects.filter(mobile__startswith="+9170")}
    ids = []
    for i in range(count):
        mobile = f"+9170{i:08d}"
        if mobile not in existing:
            user = User.objects.create(username=mobile)
            existing[mobile] = Rider.objects.create(user=user, mobile=mobile, name=f"Wallet bench {i}", city=city).pk
        rider_id = existing[mobile]
        ledger_entry_post(
            rider_id=rider_id,
            entry_type=EntryType.INCENTIVE,
            amount_paise=OPENING_PAISE,
            idempotency_key=f"bench:opening:{rider_id}",
        )
        ids.append(rider_id)
    return ids


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    refused: int = 0
    errors: int = 0
    machine_cpu_s: float | None = None

    def add(self, other: Run) -> None:
        self.latencies_ms += other.latencies_ms
        self.finished_at += other.finished_at
        self.refused += other.refused
        self.errors += other.errors


def post_until(rider_ids: list[int], deadline: float, seed: int) -> Run:
    from config.errors import DomainError
    from wallet.models import EntryType
    from wallet.services import ledger_entry_post

    rng = random.Random(seed)
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    run = Run()
    n = 0
    while True:
        started = time.perf_counter()
        if started >= deadline:
            return run
        n += 1
        credit = n % 5 != 0
        try:
            ledger_entry_post(
                rider_id=rng.choice(rider_ids),
                entry_type=EntryType.INCENTIVE if credit else EntryType.WITHDRAWAL,
                amount_paise=CREDIT_PAISE if credit else -DEBIT_PAISE,
                idempotency_key=f"{prefix}{n}",
            )
        except DomainError:
            run.refused += 1
        except Exception:
            run.errors += 1
        done = time.perf_counter()
        run.latencies_ms.append((done - started) * 1000)
        run.finished_at.append(done)


def worker_main(
    env: dict[str, str],
    rider_ids: list[int],
    start_at: float,
    seconds: float,
    seed: int,
    results: multiprocessing.Queue,
) -> None:
    """One poster: its own process, database connection and Redis connection; starts at ``start_at``."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection
    from django_redis import get_redis_connection

    connection.ensure_connection()
    get_redis_connection("default").ping()
    # Warm-up, not counted: the session compiles wallet_ledger_post and caches its plans on the first calls.
    post_until(rider_ids, time.perf_counter() + 0.2, seed + 1000)
    # perf_counter is per process: convert the shared wall-clock start into this process's clock.
    wait = max(0.0, start_at - time.time())
    time.sleep(wait)
    begin = time.perf_counter()
    run = post_until(rider_ids, begin + seconds, seed)
    run.finished_at = [t - begin for t in run.finished_at]
    results.put(run)


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all cores; Linux), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def concurrent_run(env: dict[str, str], rider_ids: list[int], workers: int, seconds: float) -> Run:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 5  # every worker set up, connected and warmed up before the first posting
    processes = [
        context.Process(target=worker_main, args=(env, rider_ids, start_at, seconds, i, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(max(0.0, start_at - time.time()))
    busy_before = machine_busy_s()
    time.sleep(seconds)
    busy_after = machine_busy_s()
    total = Run()
    for _ in processes:
        total.add(results.get(timeout=seconds + 600))
    for process in processes:
        process.join(timeout=60)
    if busy_before is not None and busy_after is not None:
        total.machine_cpu_s = busy_after - busy_before
    return total


def windows(run: Run, seconds: float) -> tuple[float, float]:
    """Postings completed in each whole one-second window: (slowest window, median window)."""
    per_second = Counter(int(t) for t in run.finished_at if t < int(seconds))
    counts = [per_second.get(s, 0) for s in range(int(seconds))]
    return float(min(counts)), float(statistics.median(counts))


def ledger_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM wallet_ledgerentry")
        return int(cursor.fetchone()[0])


def fill_ledger(rider_ids: list[int], target: int) -> tuple[int, float]:
    """Inserts INCENTIVE entries (spread over the riders) until the ledger holds ``target``, in batches of
    100,000, each with its balance rows moved to match in the same transaction. Returns (added, seconds)."""
    from django.db import connection, transaction

    added, started = 0, time.perf_counter()
    while (missing := target - ledger_count()) > 0:
        batch = min(missing, 100_000)
        tag = uuid.uuid4().hex[:12]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                WITH inserted AS (
                    INSERT INTO wallet_ledgerentry (rider_id, account, entry_type, amount_paise, idempotency_key,
                                                    memo, created_at)
                    SELECT (%(riders)s::bigint[])[1 + (g %% cardinality(%(riders)s::bigint[]))], 'WALLET',
                           'INCENTIVE', 100, 'bench:fill:' || %(tag)s || ':' || g, '', now()
                    FROM generate_series(1, %(batch)s) AS g
                    RETURNING rider_id
                )
                UPDATE wallet_balance b
                SET wallet_paise = b.wallet_paise + s.total, entry_count = b.entry_count + s.n
                FROM (SELECT rider_id, sum(100) AS total, count(*) AS n FROM inserted GROUP BY rider_id) s
                WHERE b.rider_id = s.rider_id
                """,
                {"riders": rider_ids, "tag": tag, "batch": batch},
            )
        added += batch
        print(f"  ledger filled to {target - missing + batch:,} entries", file=sys.stderr, flush=True)
    return added, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="length of each posting phase")
    parser.add_argument("--workers", type=int, default=6, help="posting processes")
    parser.add_argument("--riders", type=int, default=2000)
    parser.add_argument("--hot-riders", type=int, default=4, help="riders of the contended phase")
    parser.add_argument("--ledger-entries", type=int, default=1_000_000, help="ledger size for reconciliation")
    parser.add_argument("--reconcile-runs", type=int, default=3)
    args = parser.parse_args()

    database_url, redis_url = database_urls("_wallet_bench")
    env = wallet_env(database_url, redis_url)
    ensure_database(database_url)
    setup_django(env)
    print(f"seeding {args.riders} riders ...", file=sys.stderr, flush=True)
    rider_ids = seed_riders(args.riders)

    phases = [
        (f"{args.workers} workers, {args.riders:,} riders", rider_ids),
        (f"{args.workers} workers, {args.hot_riders} hot riders (one balance lock each)", rider_ids[: args.hot_riders]),
    ]
    rows = []
    for label, riders in phases:
        print(f"postings, {label}: {args.seconds:g} s ...", file=sys.stderr, flush=True)
        run = concurrent_run(env, riders, args.workers, args.seconds)
        rows.append((label, run))

    from wallet.services import ledger_reconcile

    added, fill_s = fill_ledger(rider_ids, args.ledger_entries)
    recon = []
    for _ in range(args.reconcile_runs):
        print("reconciling ...", file=sys.stderr, flush=True)
        recon.append(ledger_reconcile())

    print(
        f"\nWallet postings, {args.seconds:g} s a phase, {args.workers} processes calling "
        f"ledger_entry_post back to back, DEBUG=0, {datetime.now(UTC):%Y-%m-%d}\n"
    )
    header = ["phase", "postings/s", "slowest 1-s window", "median 1-s window", "p50 ms", "p95 ms", "p99 ms"]
    print("| " + " | ".join([*header, "postings", "refused", "machine CPU ms a posting"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, run in rows:
        slowest, median = windows(run, args.seconds)
        lat = run.latencies_ms
        cpu = f"{run.machine_cpu_s / len(lat) * 1000:.2f}" if run.machine_cpu_s is not None and lat else "n/a"
        print(
            f"| {label} | {len(lat) / args.seconds:,.0f} | {slowest:,.0f} | {median:,.0f} | "
            f"{percentile(lat, 50):.2f} | {percentile(lat, 95):.2f} | {percentile(lat, 99):.2f} | {len(lat):,} | "
            f"{run.refused} | {cpu} |"
        )
    errors = sum(run.errors for _, run in rows)
    if errors:
        print(f"\n{errors} postings failed with an error (not a refusal): see above")
    durations = sorted(r.duration_ms for r in recon)
    entries = int(recon[-1].entries_checked)
    best, median_ms = durations[0], statistics.median(durations)
    print(
        f"\nReconciliation over {entries:,} entries of {recon[-1].riders_checked:,} riders "
        f"({args.reconcile_runs} runs): median {median_ms:,.0f} ms, best {best:,} ms; "
        f"{median_ms / entries * 1e6:,.0f} ms per million entries; drift found: "
        f"{', '.join(str(r.drift_count) for r in recon)}"
    )
    if added:
        print(f"(ledger filled with {added:,} entries by SQL in {fill_s:,.1f} s before reconciling)")


if __name__ == "__main__":
    main()
