"""Live dashboard benchmark: 1,000 dashboard websockets on one city while 2,000 riders stream GPS through the API.

    .venv/bin/python bench/dashboard_ws_bench.py [--viewers 1000] [--riders 2000] [--interval 5] [--seconds 60]
        [--layers pubsub:hub,core:hub,pubsub:group,core:group] [--ws-workers 2] [--http-workers 3]
        [--sos 20] [--sos-workers 1,0] [--http-threads 0] [--deflate]

Uses DATABASE_URL / REDIS_URL when set (else the embedded servers of `make services`: it reads var/run.env). Works
in its own database, `<name>_ws_bench` (created and migrated on first use), its own cache key prefix
(BENCH_CACHE_PREFIX) and Celery's messages (every SOS schedules its escalation) in Redis database 6, purged at the
end. For each channel layer (CHANNEL_LAYER_BACKEND) and
fan-out (DISPATCH_FANOUT: a relay per process, or a group member per viewer):
1. starts gunicorn (WSGI, --http-workers sync workers, DEBUG=0) on 127.0.0.1:BENCH_PORT for the API, and uvicorn
   (ASGI, --ws-workers workers) on BENCH_PORT+1 for the websockets: the process model DESIGN.md measured; with
   --sos-workers N > 0, the SOS priority lane too: a second gunicorn of N sync workers on BENCH_PORT+2 that takes
   the SOS posts, as the production proxy routes POST /api/v1/driver/emergency/ to a pool of its own (README);
   with 0 the SOS posts queue in the main pool behind the GPS posts (the comparison);
2. a viewer process (one asyncio loop, the `websockets` client) opens --viewers dashboard sockets on the city with
   a staff session cookie, and records when each frame arrives at each socket;
3. --riders on-duty riders (40 threads, each posting for its share on a keep-alive connection) post one fresh
   point every --interval seconds to POST /api/v1/driver/locations/ (202), from random offsets; --sos riders post
   an SOS (POST /api/v1/driver/emergency/, 201) spread over the run;
4. reports: p50/p95/p99 from each POST's 202 to its point arriving in a `rider.moved` frame, over every
   (viewer, point); points never delivered; viewers dropped (closed or never connected) and frames a viewer
   missed; the ASGI processes' RSS growth per connection; SOS p95 from the POST to each viewer and to the last
   viewer; the machine's load average and the ASGI processes' CPU.
Prints a Markdown table. Standard library plus the project's requirements (`websockets` comes with uvicorn[standard]).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PORT,
    REPO,
    await_health,
    bench_env,
    database_urls,
    ensure_database,
    exchange,
    percentile,
    setup_django,
    start_server,
)

WS_PORT = PORT + 1
#: The SOS priority lane's gunicorn (``--sos-workers``).
SOS_PORT = PORT + 2
CITY = ("WSB", "Websocket bench city", 12.9716, 77.5946)
LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
POSTER_THREADS = 40
MOVED_PREFIX = '{"event": "rider.moved"'
SOS_PREFIX = '{"event": "sos.raised"'


def ws_env(database_url: str, redis_url: str) -> dict[str, str]:
    broker = urlunsplit(urlsplit(redis_url)._replace(path="/6"))
    return {
        **bench_env(database_url, redis_url),
        "CELERY_BROKER_URL": broker,
        "LIVE_POSITION_TTL_S": "3600",
        "PYTHONWARNINGS": "ignore::UserWarning",  # whitenoise: no collected static files in a bench
        "DISPATCH_FLUSH_MS": "500",
    }


# --- seed -----------------------------------------------------------------------------------------


def seed(count: int) -> tuple[list[tuple[int, str]], str]:
    """``count`` on-duty riders of the bench city with API tokens (created once, reused), and a staff session."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from fleet.models import City
    from riders.models import DutyLog, DutyStatus, EmergencyAlert, KycStatus, Rider

    city, _ = City.objects.get_or_create(
        code=CITY[0], defaults={"name": CITY[1], "center_lat": CITY[2], "center_lon": CITY[3]}
    )
    have = Rider.objects.filter(city=city).count()
    if have < count:
        now = timezone.now()
        mobiles = [f"+9180{i:08d}" for i in range(have, count)]
        User.objects.bulk_create([User(username=m, password="!") for m in mobiles], ignore_conflicts=True)
        users = dict(User.objects.filter(username__in=mobiles).values_list("username", "pk"))
        Rider.objects.bulk_create(
            [
                Rider(
                    user_id=users[m],
                    mobile=m,
                    name=f"WS rider {i}",
                    city=city,
                    kyc_status=KycStatus.APPROVED,
                    duty_status=DutyStatus.ON,
                    duty_changed_at=now,
                )
                for i, m in zip(range(have, count), mobiles, strict=True)
            ],
            batch_size=1000,
        )
    riders = list(Rider.objects.filter(city=city).order_by("pk").values_list("pk", "user_id")[:count])
    user_ids = [user_id for _, user_id in riders]
    with_token = set(Token.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    Token.objects.bulk_create(
        [Token(key=Token.generate_key(), user_id=u) for u in user_ids if u not in with_token], batch_size=1000
    )
    tokens = dict(Token.objects.filter(user_id__in=user_ids).values_list("user_id", "key"))
    rider_ids = [rider_id for rider_id, _ in riders]
    DutyLog.objects.filter(rider_id__in=rider_ids).delete()
    DutyLog.objects.bulk_create(
        [DutyLog(rider_id=r, started_at=timezone.now() - timedelta(hours=1)) for r in rider_ids], batch_size=2000
    )
    Rider.objects.filter(pk__in=rider_ids).update(duty_status=DutyStatus.ON)
    EmergencyAlert.objects.filter(rider_id__in=rider_ids).delete()

    staff, _ = User.objects.get_or_create(username="ws-bench-dispatcher", defaults={"is_staff": True})
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(staff.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = staff.get_session_auth_hash()
    session.save()
    return [(rider_id, tokens[user_id]) for rider_id, user_id in riders], str(session.session_key)


def clear_live_state() -> None:
    """The city's pending positions and live hashes from an earlier run, so the first flush is this run's."""
    from django.core.cache import cache

    cache.delete_pattern("live:*", itersize=1000)  # type: ignore[attr-defined]


def broker_purge() -> int:
    from config.celery import app

    return app.control.purge() or 0


# --- servers --------------------------------------------------------------------------------------


def start_uvicorn(env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(WS_PORT),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    return await_health(server, WS_PORT, "uvicorn", settle_s=1.0, tries=200)  # settle: every worker up


def stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def tree(server: subprocess.Popen[bytes]) -> list[Any]:
    import psutil

    root = psutil.Process(server.pid)
    return [root, *root.children(recursive=True)]


def rss_bytes(server: subprocess.Popen[bytes]) -> int:
    return sum(p.memory_info().rss for p in tree(server))


def cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in tree(server))


# --- the viewers (a process of their own) ------------------------------------------------------------


async def viewers_main(count: int, session_key: str, deflate: bool) -> None:
    """Opens ``count`` dashboard sockets, prints READY, records arrivals until a line on stdin, prints JSON."""
    import websockets

    uri = f"ws://127.0.0.1:{WS_PORT}/ws/dispatch/{CITY[0]}/"
    headers = {"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{WS_PORT}"}
    frames: dict[int, list[tuple[int, str]]] = {}
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(count)]
    sos: list[list[tuple[int, float]]] = [[] for _ in range(count)]
    closed: dict[int, Any] = {}
    failed = 0
    sockets: list[Any] = []

    async def connect(index: int) -> Any:
        nonlocal failed
        try:
            return await websockets.connect(
                uri,
                additional_headers=headers,
                compression="deflate" if deflate else None,
                max_size=None,
                ping_interval=None,
                open_timeout=120,
                close_timeout=5,
            )
        except Exception as error:  # counted: a viewer that never connected is a dropped viewer
            failed += 1
            closed[index] = f"connect: {error!r}"
            return None

    async def connect_range(first: int, last: int) -> None:
        nonlocal sockets
        for start in range(first, last, 50):
            sockets += await asyncio.gather(*(connect(i) for i in range(start, min(last, start + 50))))

    # Half first, so the parent measures the RSS growth of the second half on workers already warm (the first
    # sockets of a worker load the consumers, the session store, the database pool).
    half = count // 2
    await connect_range(0, half)
    print("HALF", half, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await connect_range(half, count)

    async def listen(index: int, socket: Any) -> None:
        mine, my_sos = arrivals[index], sos[index]
        try:
            async for text in socket:
                at = time.time()
                if text.startswith(MOVED_PREFIX):
                    key = hash(text)
                    mine.append((key, at))
                    if key not in frames:
                        riders = json.loads(text)["payload"]["riders"]
                        frames[key] = [(r["rider_id"], r["recorded_at"]) for r in riders]
                elif text.startswith(SOS_PREFIX):
                    my_sos.append((json.loads(text)["payload"]["alert_id"], at))
        except Exception as error:
            closed[index] = repr(error)
            return
        closed[index] = f"closed by the server: {socket.close_code}"

    tasks = [asyncio.create_task(listen(i, s)) for i, s in enumerate(sockets) if s is not None]
    print("READY", len(tasks), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    still_open = sum(1 for task in tasks if not task.done())
    for socket in sockets:
        if socket is not None:
            await socket.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    json.dump(
        {
            "connected": len(tasks),
            "failed": failed,
            "open_at_stop": still_open,
            "closed_early": {str(k): v for k, v in closed.items() if not v.startswith("closed by the server: 1000")},
            "frames": {str(k): v for k, v in frames.items()},
            "arrivals": arrivals,
            "sos": sos,
        },
        sys.stdout,
    )
    sys.stdout.flush()


# --- the riders (threads in the main process) ----------------------------------------------------------


@dataclass
class Posted:
    moved: dict[tuple[int, str], float] = field(default_factory=dict)  # (rider, recorded_at) -> 202 at
    sos: dict[int, float] = field(default_factory=dict)  # alert id -> POST sent at
    sos_answered: dict[int, float] = field(default_factory=dict)  # alert id -> 201 at
    errors: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    post_ms: list[float] = field(default_factory=list)


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def post_locations(
    riders: list[tuple[int, str]], interval: float, deadline: float, posted: Posted, lock: threading.Lock
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    now = time.time()
    due = [(now + random.random() * interval, rider_id, token) for rider_id, token in riders]
    heapq.heapify(due)
    while due:
        at, rider_id, token = heapq.heappop(due)
        if at >= deadline or time.time() >= deadline:  # behind schedule (a saturated server) ends on time too
            break
        pause = at - time.time()
        if pause > 0:
            time.sleep(pause)
        recorded = datetime.now(UTC)
        sent = time.time()
        point = {"lat": 12.97 + random.random() / 20, "lon": 77.59 + random.random() / 20, "speed": 20.0}
        body = json.dumps(
            {"points": [{**point, "recorded_at": recorded.isoformat(), "heading": 90, "battery": 80}]}
        ).encode()
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        answer = exchange(connection, "POST", "/api/v1/driver/locations/", headers=headers, body=body)
        status = answer[0].status if answer is not None else 0
        answered = time.time()
        with lock:
            posted.requests += 1
            posted.post_ms.append((answered - sent) * 1000)
            if status == 202:
                posted.moved[(rider_id, timestamp(recorded))] = answered
            else:
                posted.errors[status] += 1
        heapq.heappush(due, (at + interval, rider_id, token))
    connection.close()


def post_sos(
    riders: list[tuple[int, str]], count: int, seconds: float, port: int, posted: Posted, lock: threading.Lock
) -> None:
    """``count`` SOS posts spread over ``seconds``, to the gunicorn on ``port`` (the lane's, or the main pool's)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    gap = seconds / (count + 1)
    for _, token in riders[:count]:
        time.sleep(gap)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        sent = time.time()
        answer = exchange(
            connection, "POST", "/api/v1/driver/emergency/", headers=headers, body=b'{"message": "bench"}'
        )
        status, body = (answer[0].status, answer[1]) if answer is not None else (0, b"")
        answered = time.time()
        with lock:
            if status == 201:
                posted.sos[json.loads(body)["id"]] = sent
                posted.sos_answered[json.loads(body)["id"]] = answered
            else:
                posted.errors[status] += 1
    connection.close()


# --- one run -------------------------------------------------------------------------------------------


@dataclass
class Result:
    layer: str
    sos_workers: int
    viewers: int
    connected: int
    dropped: int
    frames: int
    frames_missed: int
    points_posted: int
    points_undelivered: int
    post_rate: float
    post_ms: tuple[float, float]
    api_cpu_ms_per_post: float
    moved_ms: tuple[float, float, float]
    sos_alerts: int
    sos_each_ms: tuple[float, float]
    sos_all_ms: float
    sos_after_201_ms: float
    sos_post_ms: float
    kib_per_connection: float
    kib_first_half: float
    asgi_cpu_share: float
    load: tuple[float, float]
    errors: dict[int, int]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def run_once(
    layer: str,
    sos_workers: int,
    args: argparse.Namespace,
    env: dict[str, str],
    riders: list[tuple[int, str]],
    session: str,
) -> Result:
    backend, _, fanout = layer.partition(":")
    env = {**env, "CHANNEL_LAYER_BACKEND": LAYERS[backend], "DISPATCH_FANOUT": fanout or "hub"}
    name = f"{layer}, SOS lane {sos_workers}" if sos_workers else f"{layer}, no SOS lane"
    clear_live_state()
    http_server = start_server(env, args.http_workers, threads=args.http_threads)
    sos_server = start_server(env, sos_workers, port=SOS_PORT) if sos_workers else None
    ws_server = start_uvicorn(env, args.ws_workers)
    viewer_process: subprocess.Popen[str] | None = None
    try:
        rss_idle = rss_bytes(ws_server)
        log(f"{name}: servers up, opening {args.viewers} sockets")
        viewer_process = subprocess.Popen(
            [sys.executable, __file__, "--viewer-process", str(args.viewers), session, "1" if args.deflate else "0"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert viewer_process.stdout is not None
        assert viewer_process.stdin is not None
        half = viewer_process.stdout.readline().split()
        if not half or half[0] != "HALF":
            raise SystemExit(f"viewers did not start: {half}")
        time.sleep(2)
        rss_half = rss_bytes(ws_server)
        viewer_process.stdin.write("go on\n")
        viewer_process.stdin.flush()
        ready = viewer_process.stdout.readline().split()
        if not ready or ready[0] != "READY":
            raise SystemExit(f"viewers did not start: {ready}")
        time.sleep(2)
        rss_connected = rss_bytes(ws_server)
        log(f"{name}: {ready[1]} sockets open, riders posting for {args.seconds:g} s")
        load_before = os.getloadavg()[0]
        import psutil

        parts = {
            "asgi": lambda: cpu_seconds(ws_server),
            "wsgi": lambda: cpu_seconds(http_server),
            "sos-lane": lambda: cpu_seconds(sos_server) if sos_server is not None else 0.0,
            "viewers": lambda: sum(psutil.Process(viewer_process.pid).cpu_times()[:2]),
            "posters": lambda: sum(psutil.Process().cpu_times()[:2]),
            "machine": lambda: sum(psutil.cpu_times()[:3]),
        }
        cpu_start = {name: read() for name, read in parts.items()}
        cpu_before, clock_before = cpu_start["asgi"], time.monotonic()

        posted, lock = Posted(), threading.Lock()
        deadline = time.time() + args.seconds
        shares = [riders[i::POSTER_THREADS] for i in range(POSTER_THREADS)]
        threads = [
            threading.Thread(target=post_locations, args=(share, args.interval, deadline, posted, lock))
            for share in shares
        ]
        sos_port = SOS_PORT if sos_server is not None else PORT
        threads.append(
            threading.Thread(target=post_sos, args=(riders[::97], args.sos, args.seconds, sos_port, posted, lock))
        )
        began = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - began
        time.sleep(3)  # the last flush and SOS reach everyone
        wall = time.monotonic() - clock_before
        cpu_share = (cpu_seconds(ws_server) - cpu_before) / wall
        cpu_by_part = {name: (read() - cpu_start[name]) / wall for name, read in parts.items()}
        log(f"{name}: CPU in cores over {wall:.0f} s: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_by_part.items()))
        load_after = os.getloadavg()[0]
        viewer_process.stdin.write("stop\n")
        viewer_process.stdin.flush()
        report = json.loads(viewer_process.stdout.read())
        viewer_process.wait(30)
        post_p50, post_p95 = percentile(posted.post_ms, 50), percentile(posted.post_ms, 95)
        # The GPS pool's CPU per GPS post (its few SOS posts, without the lane, are within the noise).
        api_cpu_ms = cpu_by_part["wsgi"] * wall * 1000 / max(1, posted.requests)
        log(f"{name}: {posted.requests} posts in {elapsed:.0f} s, POST p50 {post_p50:.0f} p95 {post_p95:.0f} ms")
    finally:
        if viewer_process is not None and viewer_process.poll() is None:
            viewer_process.kill()
        stop(ws_server)
        stop(http_server)
        if sos_server is not None:
            stop(sos_server)

    reasons = Counter(report["closed_early"].values())
    if reasons:
        print(f"  {name}: sockets closed early: {dict(reasons.most_common(3))}", file=sys.stderr)
    frames = {int(k): v for k, v in report["frames"].items()}
    histogram: Counter[int] = Counter()
    delivered: set[tuple[int, str]] = set()
    for entries in frames.values():
        delivered.update((rider_id, at) for rider_id, at in entries)
    frame_posts = {
        key: [posted.moved[(r, at)] for r, at in entries if (r, at) in posted.moved] for key, entries in frames.items()
    }
    # Every (viewer, point) pair, counted in 2 ms bins of arrival and of 202 per frame: a million viewer-points a
    # second of run would take minutes pair by pair.
    arrivals_by_frame: dict[int, Counter[int]] = {}
    for viewer_arrivals in report["arrivals"]:
        for key, arrived in viewer_arrivals:
            arrivals_by_frame.setdefault(key, Counter())[int(arrived * 500)] += 1
    for key, arrived_bins in arrivals_by_frame.items():
        post_bins = Counter(int(answered * 500) for answered in frame_posts[key])
        for arrived_bin, viewers in arrived_bins.items():
            for post_bin, points in post_bins.items():
                histogram[(arrived_bin - post_bin) * 2] += viewers * points
    missed = sum(max(0, len(frames) - len({k for k, _ in a})) for a in report["arrivals"])
    sos_each: list[float] = []
    sos_all: list[float] = []
    by_alert: dict[int, list[float]] = {}
    after_201: list[float] = []
    for viewer_sos in report["sos"]:
        for alert_id, arrived in viewer_sos:
            if alert_id in posted.sos:
                by_alert.setdefault(alert_id, []).append((arrived - posted.sos[alert_id]) * 1000)
                after_201.append((arrived - posted.sos_answered[alert_id]) * 1000)
    for times in by_alert.values():
        sos_each += times
        sos_all.append(max(times) if len(times) == report["connected"] else float("inf"))
    return Result(
        layer=name,
        sos_workers=sos_workers,
        viewers=args.viewers,
        connected=report["connected"],
        dropped=report["failed"] + report["connected"] - report["open_at_stop"],
        frames=len(frames),
        frames_missed=missed,
        points_posted=len(posted.moved),
        points_undelivered=len(set(posted.moved) - delivered),
        post_rate=posted.requests / elapsed,
        post_ms=(post_p50, post_p95),
        api_cpu_ms_per_post=api_cpu_ms,
        moved_ms=tuple(hist_percentile(histogram, p) for p in (50, 95, 99)),  # type: ignore[arg-type]
        sos_alerts=len(posted.sos),
        sos_each_ms=(percentile(sos_each, 50), percentile(sos_each, 95)),
        sos_all_ms=percentile(sos_all, 95),
        sos_after_201_ms=percentile(after_201, 95),
        sos_post_ms=percentile([(posted.sos_answered[a] - posted.sos[a]) * 1000 for a in posted.sos], 95),
        kib_per_connection=(rss_connected - rss_half) / max(1, args.viewers - int(half[1])) / 1024,
        kib_first_half=(rss_half - rss_idle) / max(1, int(half[1])) / 1024,
        asgi_cpu_share=cpu_share,
        load=(load_before, load_after),
        errors=dict(posted.errors),
    )


def hist_percentile(histogram: Counter[int], pct: float) -> float:
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank, seen = pct / 100 * total, 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--viewer-process":
        asyncio.run(viewers_main(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--riders", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--layers",
        default="pubsub:hub,core:hub,pubsub:group,core:group",
        help="runs, each a channel layer (pubsub, core) and a DISPATCH_FANOUT (hub, group)",
    )
    parser.add_argument("--ws-workers", type=int, default=2)
    parser.add_argument("--http-workers", type=int, default=3)
    parser.add_argument(
        "--http-threads", type=int, default=0, help="the API's gunicorn: gthread workers of this many threads (0: sync)"
    )
    parser.add_argument("--sos", type=int, default=20)
    parser.add_argument(
        "--sos-workers",
        default="1",
        help="runs, each the SOS priority lane's gunicorn workers on BENCH_PORT+2 (0: no lane, SOS to the API pool)",
    )
    parser.add_argument("--deflate", action="store_true", help="viewers negotiate permessage-deflate, as browsers do")
    args = parser.parse_args()

    database_url, redis_url = database_urls("_ws_bench")
    ensure_database(database_url)
    env = ws_env(database_url, redis_url)
    setup_django(env)
    started = time.time()
    riders, session = seed(args.riders)
    log(f"seeded {len(riders)} riders in {time.time() - started:.1f} s")

    results = []
    for layer in args.layers.split(","):
        for sos_workers in (int(n) for n in args.sos_workers.split(",")):
            results.append(run_once(layer, sos_workers, args, env, riders, session))
            log(f"{results[-1]}")
            time.sleep(2)
    purged = broker_purge()

    print(
        f"\n{args.viewers} viewers on one city, {args.riders} riders posting a point every {args.interval:g} s for "
        f"{args.seconds:g} s; uvicorn {args.ws_workers} workers (websockets), gunicorn {args.http_workers} "
        f"{f'gthread workers of {args.http_threads} threads' if args.http_threads else 'sync workers'} (API), the SOS "
        "lane's gunicorn (sync workers) as the rows say; "
        f"permessage-deflate {'on' if args.deflate else 'off'}\n"
    )
    print(
        "| layer, SOS lane | viewers connected | dropped | frames / missed | points 202 (req/s) | "
        "GPS POST p50 / p95 ms | API CPU ms per GPS POST | undelivered | "
        "202→viewer p50 / p95 / p99 ms | SOS POST→viewer p50 / p95 ms | SOS to every viewer p95 ms | "
        "SOS POST→201 / 201→viewer p95 ms | RSS per connection KiB (warm / first half) | ASGI CPU (cores) | "
        "load avg before / after |"
    )
    print("| --- " * 15 + "|")
    for r in results:
        print(
            f"| {r.layer} | {r.connected:,} / {r.viewers:,} | {r.dropped} | {r.frames} / {r.frames_missed} | "
            f"{r.points_posted:,} ({r.post_rate:.0f}) | {r.post_ms[0]:.0f} / {r.post_ms[1]:.0f} | "
            f"{r.api_cpu_ms_per_post:.1f} | {r.points_undelivered} | "
            f"{r.moved_ms[0]:.0f} / {r.moved_ms[1]:.0f} / {r.moved_ms[2]:.0f} | "
            f"{r.sos_each_ms[0]:.0f} / {r.sos_each_ms[1]:.0f} ({r.sos_alerts} alerts) | {r.sos_all_ms:.0f} | "
            f"{r.sos_post_ms:.0f} / {r.sos_after_201_ms:.0f} | "
            f"{r.kib_per_connection:.0f} / {r.kib_first_half:.0f} | {r.asgi_cpu_share:.2f} | "
            f"{r.load[0]:.2f} / {r.load[1]:.2f} |"
        )
        if r.errors:
            print(f"  {r.layer}: non-2xx answers {r.errors}")
    print(f"\n({purged} scheduled SOS escalations purged from the bench broker)")


if __name__ == "__main__":
    main()
