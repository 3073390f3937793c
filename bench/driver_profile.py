"""Where the CPU of the live dashboard benchmark's two driver requests goes: a one-point GPS batch
(``POST /api/v1/driver/locations/``) and an SOS (``POST /api/v1/driver/emergency/``), through Django's test
client, in process, against the dashboard benchmark's database (``<name>_ws_bench``, seeded by
``bench/dashboard_ws_bench.py`` or here).

    .venv/bin/python bench/driver_profile.py [--requests 2000] [--sos 200] [--top 25]

Prints the CPU time (process time: every thread of this process, the publishing loop's included) per request
of each, unprofiled, then cProfile's costliest functions of each. CPU time, not wall time: it holds on a
machine whose other processes take the cores.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import database_urls, ensure_database, setup_django
from dashboard_ws_bench import seed, ws_env

LOCATIONS = "/api/v1/driver/locations/"
EMERGENCY = "/api/v1/driver/emergency/"


def gps_body() -> str:
    point = {
        "lat": 12.97 + random.random() / 20,
        "lon": 77.59 + random.random() / 20,
        "speed": 20.0,
        "recorded_at": datetime.now(UTC).isoformat(),
        "heading": 90,
        "battery": 80,
    }
    return json.dumps({"points": [point]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="GPS posts timed (and as many profiled)")
    parser.add_argument("--sos", type=int, default=200, help="SOS posts timed (and as many profiled)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    database_url, redis_url = database_urls("_ws_bench")
    ensure_database(database_url)
    setup_django(ws_env(database_url, redis_url))
    from django.test import Client

    from config.celery import app
    from riders.models import EmergencyAlert

    riders, _ = seed(2000)
    tokens = [token for _, token in riders]
    client = Client(HTTP_HOST="127.0.0.1")  # one: a client loads the middleware anew every few requests

    def gps(count: int) -> None:
        for i in range(count):
            auth = f"Token {tokens[i % len(tokens)]}"
            response = client.post(LOCATIONS, gps_body(), content_type="application/json", HTTP_AUTHORIZATION=auth)
            assert response.status_code == 202, response.content

    def sos(count: int) -> None:
        for i in range(count):
            auth = f"Token {tokens[(i * 7) % len(tokens)]}"
            body = '{"message": "profile"}'
            response = client.post(EMERGENCY, body, content_type="application/json", HTTP_AUTHORIZATION=auth)
            assert response.status_code == 201, response.content

    gps(200)  # connections, caches and code paths warm first
    sos(20)
    for name, run, count in (("GPS one-point batch", gps, args.requests), ("SOS", sos, args.sos)):
        started = time.process_time()
        run(count)
        spent = time.process_time() - started
        print(f"{name}: {spent * 1000 / count:.2f} ms of CPU per request over {count} (unprofiled)")
    for name, run, count in (("GPS one-point batch", gps, args.requests), ("SOS", sos, args.sos)):
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        run(count)
        profile.disable()
        print(f"\n=== {name}, {count} requests under the profiler ===")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    EmergencyAlert.objects.filter(rider_id__in=[r for r, _ in riders]).delete()
    print(f"({app.control.purge() or 0} scheduled SOS escalations purged from the bench broker)")


if __name__ == "__main__":
    main()
