"""Where an order create's CPU goes: cProfile over ``POST /api/v1/orders/`` through Django's test client, in
process, against the order intake benchmark's database (``<name>_orders_bench``).

    .venv/bin/python bench/intake_profile.py [--orders 400]

Prints each part's share of the profiled time (cumulative), then the 25 costliest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_env, database_urls, ensure_database, setup_django
from orders_api import PATH, Orders, seed_partners

#: The parts of a create, by the function that does each (file suffix, function name).
PARTS = {
    "reading the order back for the answer": ("orders/api/views.py", "_detail"),
    "authentication, the partner check, the rate limit": ("config/api/views.py", "initial"),
    "the intake service (city, insert, event, commit)": ("orders/services.py", "order_intake"),
    "writing the answer (serializer)": ("rest_framework/serializers.py", "data"),
    "validating the body": ("config/api/views.py", "validated"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    database_url, redis_url = database_urls("_orders_bench")
    env = {**bench_env(database_url, redis_url), "ORDER_AUTO_ASSIGN": "0"}
    ensure_database(database_url)
    setup_django(env)
    from django.test import Client

    token = seed_partners(1)[0]
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    orders = Orders()
    for _ in range(50):  # connections, caches and code paths warm first
        assert client.post(PATH, orders.next(), content_type="application/json").status_code == 201
    bodies = [orders.next() for _ in range(args.orders)]

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for body in bodies:
        client.post(PATH, body, content_type="application/json")
    profile.disable()

    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(cumulative for (_, _, _, cumulative, _) in raw.values())
    print(f"{args.orders} creates, {total * 1000 / args.orders:.1f} ms of CPU each under the profiler\n")
    for label, (suffix, name) in PARTS.items():
        # max, not sum: a name may match nested calls of itself (Serializer.data inside BaseSerializer.data)
        spent = max(v[3] for (path, _, function), v in raw.items() if path.endswith(suffix) and function == name)
        print(f"{spent / total:6.0%}  {label}")
    print()
    stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
