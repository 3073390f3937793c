"""Where an automatic assignment's CPU goes: one caller assigning orders in process, against the dispatch
benchmark's database (``<name>_dispatch_bench``, seeded by bench/assignment_bench.py or here).

    .venv/bin/python bench/assignment_profile.py [--orders 600] [--repeat 3] [--profile]

First the CPU of ``--orders`` calls of ``orders.assignment.order_assign`` without a profiler, ``--repeat`` times:
the caller's and its PostgreSQL backend's, per assignment, and the least of the repeats (a steadier guide than
throughput on a shared machine, where other load only ever adds to a figure). With
``--profile``, as many again under cProfile: each part's share of the caller's profiled CPU (cumulative),
then the 30 costliest functions by their own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from assignment_bench import assign_all, dispatch_env, orders_clear, orders_create, place_riders, seed_riders
from common import database_urls, ensure_database, setup_django

#: The parts of an assignment, by the function that does each (file suffix, function name).
PARTS = {
    "locking the order": ("orders/locks.py", "lock_order"),
    "GEOSEARCH": ("orders/assignment.py", "_nearest_on_duty"),
    "choosing and locking the rider": ("orders/assignment.py", "_rider_lock_nearest"),
    "the offer and the transition": ("orders/assignment.py", "_offer_make"),
    "after commit: the pushes": ("orders/events.py", "order_changed"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--riders", type=int, default=5000)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="then as many again under cProfile")
    args = parser.parse_args()
    database_url, redis_url = database_urls("_dispatch_bench")
    env = dispatch_env(database_url, redis_url)
    ensure_database(database_url)
    setup_django(env)

    city_id, rider_ids = seed_riders(args.riders)
    place_riders(rider_ids)
    orders_clear()
    assign_all(orders_create(city_id, 50, seed=1))  # connections, caches and code paths warm first
    orders_clear()
    totals = []
    for seed in range(2, 2 + args.repeat):
        orders_clear()
        plain = assign_all(orders_create(city_id, args.orders, seed=seed))
        per = 1000 / max(plain.assigned, 1)
        totals.append((plain.caller_cpu_s + plain.postgres_cpu_s) * per)
        print(
            f"{plain.assigned} assigned ({plain.no_rider} no rider, {len(plain.errors)} errors): CPU per assignment "
            f"{plain.caller_cpu_s * per:.2f} ms caller + {plain.postgres_cpu_s * per:.2f} ms PostgreSQL = "
            f"{totals[-1]:.2f} ms",
            flush=True,
        )
    print(f"least of {args.repeat}: {min(totals):.2f} ms")
    if not args.profile:
        return

    from orders.assignment import order_assign

    orders_clear()
    order_ids = orders_create(city_id, args.orders, seed=99)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for order_id in order_ids:
        order_assign(order_id=order_id, actor=None)
    profile.disable()

    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(cumulative for (_, _, _, cumulative, _) in raw.values())
    print(f"\nunder the profiler: {total * 1000 / len(order_ids):.2f} ms of caller CPU per assignment")
    for label, (suffix, name) in PARTS.items():
        matched = [v[3] for (path, _, function), v in raw.items() if path.endswith(suffix) and function == name]
        spent = max(matched, default=0.0)
        print(f"{spent / total:6.0%}  {label}")
    print()
    stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
