"""What the benchmarks share: their own database next to the portal's, the production web server
(gunicorn, DEBUG=0) on 127.0.0.1:8099, and an HTTP load of keep-alive clients with latency percentiles."""

from __future__ import annotations

import http.client
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
#: Override with BENCH_PORT / BENCH_CACHE_PREFIX to run two benchmarks side by side on one machine.
PORT = int(os.environ.get("BENCH_PORT", "8099"))
SECRET = "bench-only-secret-key-" + "x" * 40


def database_urls(suffix: str = "_bench") -> tuple[str, str]:
    """The bench database's URL (the portal's name plus ``suffix``) and Redis's: from the environment, else
    from the embedded servers' ``var/run.env``."""
    env = dict(os.environ)
    run_env = REPO / "var" / "run.env"
    if ("DATABASE_URL" not in env or "REDIS_URL" not in env) and run_env.exists():
        for line in run_env.read_text().splitlines():
            line = line.removeprefix("export ").strip()
            if "=" in line:
                key, value = line.split("=", 1)
                env.setdefault(key, value.strip("'\""))
    if "DATABASE_URL" not in env or "REDIS_URL" not in env:
        raise SystemExit("set DATABASE_URL and REDIS_URL, or start the embedded servers with `make services`")
    parts = urlsplit(env["DATABASE_URL"])
    bench_db = urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))
    return bench_db, env["REDIS_URL"]


def bench_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": os.environ.get("BENCH_CACHE_PREFIX", "fleetops-bench"),
        "DEBUG": "0",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DRIVER": "1000000/m",
        "RATE_LIMIT_ANONYMOUS": "1000000/m",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def ensure_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Client:
    """One simulated caller: its token, and the next request body it sends."""

    token: str
    next_body: Callable[[], bytes]


def paced(began: float, deadline: float, interval: float | None) -> Iterator[None]:
    """Yields when a client should send its next request until ``deadline`` (``time.monotonic()``): at once
    again and again (``interval`` None), or every ``interval`` seconds from a random offset after ``began``."""
    next_at = began + (random.random() * interval if interval else 0)
    while True:
        if interval:
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at += interval
        if time.monotonic() >= deadline:
            return
        yield


def exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[http.client.HTTPResponse, bytes] | None:
    """One request on a keep-alive connection: the response and its body; None when it failed (the connection
    is closed, and ``http.client`` opens it again on the next request)."""
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response, response.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        return None


def http_load(
    clients: Sequence[Client], *, path: str, seconds: float, interval: float | None, ok_status: int
) -> LoadResult:
    """Every client posts on its own keep-alive connection for ``seconds``: back to back (closed loop,
    ``interval`` None: the server's throughput) or one request every ``interval`` seconds from a random
    offset (a steady load: the latency a caller sees when the server is not saturated). Latencies are kept
    for the answers with ``ok_status``; any other status (0: no answer) counts as an error."""
    result = LoadResult()
    lock = threading.Lock()
    began = time.monotonic()
    deadline = began + seconds

    def client_loop(client: Client) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Token {client.token}", "Content-Type": "application/json"}
        for _ in paced(began, deadline, interval):
            body = client.next_body()
            started = time.perf_counter()
            answer = exchange(connection, "POST", path, headers=headers, body=body)
            status = answer[0].status if answer is not None else 0
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == ok_status:
                    result.latencies_ms.append(elapsed)
                else:
                    result.errors += 1
        connection.close()

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def start_server(env: dict[str, str], workers: int, *, port: int = PORT, threads: int = 0) -> subprocess.Popen[bytes]:
    """gunicorn with ``workers`` sync workers on 127.0.0.1:``port`` (``BENCH_PORT`` by default); with ``threads``,
    gthread workers of that many threads each instead (they keep client connections alive; sync workers do not)."""
    worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads else []
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
            *worker_class,
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    return await_health(server, port, "gunicorn")


def await_health(
    server: subprocess.Popen[bytes], port: int, name: str, *, settle_s: float = 0.0, tries: int = 100
) -> subprocess.Popen[bytes]:
    """Returns ``server`` once ``/health/`` answers on ``port`` (then ``settle_s`` more, for the rest of its
    workers); kills its process group and exits if it never does."""
    import urllib.request

    for _ in range(tries):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=1)
            time.sleep(settle_s)
            return server
        except OSError:
            time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit(f"{name} did not answer /health/")
