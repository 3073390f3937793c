"""Order intake benchmark: partners pushing new orders through ``POST /api/v1/orders/`` on the production
web server, concurrently.

    .venv/bin/python bench/orders_api.py [--partners 50] [--seconds 20] [--workers 3]

Uses DATABASE_URL / REDIS_URL like bench/ingest.py, in its own database ``<name>_orders_bench``. Seeds the
partner accounts (members of the partners group, with API tokens) and a city, starts gunicorn (DEBUG=0,
``--workers`` sync workers) with automatic assignment off (intake alone is measured; dispatch has
bench/assignment_bench.py), then:
1. back to back: every partner posts new orders (each with its own ``external_ref``) as fast as
   the answers come, for ``--seconds``: orders created per second, p50/p95/p99 latency;
2. steady: every partner posts one order a second: the latency a partner sees when the portal is not
   saturated;
3. replays: the same orders pushed again answer 200 with the first order (not a second one).
Checks that the table holds exactly one order per 201 answer. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
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

PATH = "/api/v1/orders/"


def seed_partners(count: int) -> list[str]:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from fleet.models import City

    City.objects.get_or_create(code="BLR", defaults={"name": "Bengaluru", "center_lat": 12.97, "center_lon": 77.59})
    group, _ = Group.objects.get_or_create(name=settings.PARTNER_GROUP)
    tokens = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench-partner-{i:03d}")
        user.groups.add(group)
        token, _ = Token.objects.get_or_create(user=user)
        tokens.append(token.key)
    return tokens


class Orders:
    """A partner's unique order bodies; every body sent is kept, so the replay phase can send them again."""

    run = uuid.uuid4().hex[:8]
    counter = itertools.count()

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.replayed = 0

    def next(self) -> bytes:
        n = next(self.counter)  # itertools.count is atomic under the GIL
        body = json.dumps(
            {
                "external_ref": f"BENCH-{self.run}-{n:08d}",
                "city": "BLR",
                "pickup": {"lat": 12.9716, "lon": 77.5946, "address": "MG Road, Bengaluru"},
                "drop": {"lat": 12.9352, "lon": 77.6245, "address": "Koramangala, Bengaluru"},
                "delivery_fee": "45.00",
                "cod_amount": "250.00" if n % 3 == 0 else "0.00",
                "metadata": {"items": [{"sku": f"SKU-{n % 97}", "qty": 1 + n % 3}], "partner_note": "ring twice"},
            }
        ).encode()
        self.sent.append(body)
        return body

    def replay(self) -> bytes:
        """The partner's orders again, in the order sent (from the start once all were replayed)."""
        body = self.sent[self.replayed % len(self.sent)]
        self.replayed += 1
        return body


def order_count() -> int:
    from orders.models import Order

    return Order.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    args = parser.parse_args()

    database_url, redis_url = database_urls("_orders_bench")
    env = {**bench_env(database_url, redis_url), "ORDER_AUTO_ASSIGN": "0", "RATE_LIMIT_PARTNER": "1000000/m"}
    ensure_database(database_url)
    setup_django(env)
    tokens = seed_partners(args.partners)
    partners = [(token, Orders()) for token in tokens]
    before = order_count()
    rows: list[tuple[str, LoadResult, float]] = []
    server = start_server(env, args.workers)
    try:
        for label, interval in (("back to back", None), ("each partner one a second", 1.0)):
            print(f"{label}: {args.seconds:g} s ...", file=sys.stderr, flush=True)
            clients = [Client(token, orders.next) for token, orders in partners]
            result = http_load(clients, path=PATH, seconds=args.seconds, interval=interval, ok_status=201)
            rows.append((label, result, args.seconds))
        created = sum(r.statuses.get(201, 0) for _, r, _ in rows)
        print("replays ...", file=sys.stderr, flush=True)
        clients = [Client(token, orders.replay) for token, orders in partners if orders.sent]
        replayed = http_load(clients, path=PATH, seconds=min(args.seconds, 5), interval=None, ok_status=200)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    stored = order_count() - before
    print(
        f"\nOrder intake, {args.partners} concurrent partners, {args.seconds:g} s a phase, gunicorn {args.workers} "
        "sync workers, DEBUG=0\n"
    )
    print("| phase | orders/s created | p50 ms | p95 ms | p99 ms | requests | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, result, seconds in rows:
        lat = result.latencies_ms
        print(
            f"| {label} | {len(lat) / seconds:,.0f} | {percentile(lat, 50):.1f} | {percentile(lat, 95):.1f} | "
            f"{percentile(lat, 99):.1f} | {len(lat) + result.errors:,} | {result.errors} {dict(result.statuses)} |"
        )
    lat = replayed.latencies_ms
    print(
        f"| replays of stored orders (200) | | {percentile(lat, 50):.1f} | {percentile(lat, 95):.1f} | "
        f"{percentile(lat, 99):.1f} | {len(lat) + replayed.errors:,} | {replayed.errors} {dict(replayed.statuses)} |"
    )
    verdict = "OK" if stored == created else "MISMATCH"
    print(f"\norders stored {stored:,}, 201 answers {created:,}: {verdict}")
    if stored != created:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
