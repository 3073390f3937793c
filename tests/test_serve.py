"""``make serve``, the production process model (DESIGN.md § Serving), started for real: nginx on the portal's port
routing websockets to uvicorn, the SOS endpoint to a gunicorn pool of its own and the rest to gunicorn's sync
workers, with ``DEBUG=0`` and the proxy's ``X-Forwarded-For`` believed. The portal runs on a database and a
private Redis (cache, broker and channel layer) of its own: nothing it writes reaches the other tests."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from config.embedded import port_is_free
from tests.test_faults_redis import PrivateRedis

START_TIMEOUT_S = 120


def nginx_missing() -> str | None:
    if shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"):
        return None
    return "nginx is missing (apt-get install nginx-light; .ci/run does it on CI)"


def free_port_run(length: int = 4) -> int:
    """A first port whose next ``length - 1`` are free too (serve takes PORT .. PORT+3)."""
    for _ in range(200):
        first = random.randrange(20_000, 40_000)
        if all(port_is_free(first + i, "127.0.0.1") for i in range(length)):
            return first
    raise AssertionError("no run of free ports")


class Served:
    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def pool(self, port: int) -> list[psutil.Process]:
        """The processes of the gunicorn pool bound to ``port`` (master and workers)."""
        masters = [
            process
            for process in psutil.process_iter(["cmdline"])
            if f"127.0.0.1:{port}" in " ".join(process.info["cmdline"] or []) and "gunicorn" in str(process.info)
        ]
        return [*masters, *(child for master in masters for child in master.children())]


@contextlib.contextmanager
def own_database() -> Iterator[str]:
    """A database of the portal's own next to the test database (serve migrates it), dropped afterwards."""
    database = settings.DATABASES["default"]
    user, host, port = database["USER"] or "postgres", database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    name = f"{connection.settings_dict['NAME']}_serve"[:63]
    admin = psycopg.connect(f"postgres://{user}@{host}:{port}/postgres", autocommit=True)
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgres://{user}@{host}:{port}/{name}"
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One portal for the module: it migrates a database of its own and takes ~30 s to start."""
    tmp_path = tmp_path_factory.mktemp("serve")
    missing = nginx_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"The serving test cannot run: {missing}")
        pytest.skip(f"{missing} (set CI=true to make this a failure)")
    with own_database() as database_url:
        yield from _serve(tmp_path, database_url)


def _serve(tmp_path: Path, database_url: str) -> Iterator[Served]:
    redis = PrivateRedis()
    redis.start()
    port = free_port_run()
    env = {
        **os.environ,
        "PORTAL_PORT": str(port),
        "FLEETOPS_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "SERVE_API_WORKERS": "1",
        "SERVE_CELERY_CONCURRENCY": "1",
        "DB_POOL_MAX_SIZE": "2",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("SECRET_KEY", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "config.launcher", "serve"],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    portal = Served(port, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "is serving" not in portal.log():
            if launcher.poll() is not None:
                pytest.fail(f"make serve exited with {launcher.returncode}:\n{portal.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"make serve did not come up in {START_TIMEOUT_S} s:\n{portal.log()}")
            time.sleep(0.2)
        yield portal
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0, portal.log()
        assert all(port_is_free(port + i, "127.0.0.1") for i in range(4)), "a process of serve outlived it"
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
        redis.stop()


def test_serve_routes_one_origin_to_the_three_pools_in_production_mode(served: Served) -> None:
    ready = requests.get(f"{served.url}/health/ready/", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.headers["Server"].startswith("nginx")
    assert all(check["ok"] for check in ready.json()["checks"].values())

    api = requests.get(f"{served.url}/api/v1/orders/", timeout=5)
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "not_authenticated"
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    missing = requests.get(f"{served.url}/no-such-page/", timeout=5)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text

    # A websocket through the proxy reaches uvicorn, which refuses an anonymous dashboard with 4401.
    dashboard = f"ws://127.0.0.1:{served.port}/ws/dispatch/BLR/"
    with connect(dashboard, origin=served.url, open_timeout=10) as socket, pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_the_client_address_is_the_one_nginx_saw(served: Served) -> None:
    assert requests.get(f"{served.url}/metrics", timeout=5).status_code == 200  # this test is on the loopback
    forged = requests.get(f"{served.url}/metrics", headers={"X-Forwarded-For": "8.8.8.8"}, timeout=5)
    assert forged.status_code == 403  # nginx appended 127.0.0.1; the hop before it is a public client


def test_an_sos_is_answered_while_the_api_pool_is_stuck(served: Served) -> None:
    api_pool = served.pool(served.port + 1)
    assert api_pool, served.log()
    for process in api_pool:
        process.suspend()
    try:
        with pytest.raises(requests.Timeout):
            requests.get(f"{served.url}/api/v1/orders/", timeout=2)
        sos = requests.post(f"{served.url}/api/v1/driver/emergency/", json={}, timeout=5)
        assert sos.status_code == 401  # answered by the SOS pool: no token, but not stuck behind the API
        acknowledge = requests.post(f"{served.url}/dispatch/alerts/1/acknowledge/", timeout=5)
        assert acknowledge.status_code == 403  # the dashboard's acknowledge rides the same lane (no CSRF token here)
    finally:
        for process in api_pool:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
    assert requests.get(f"{served.url}/api/v1/orders/", timeout=30).status_code == 401
