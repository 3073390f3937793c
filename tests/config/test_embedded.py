"""The embedded default: PostgreSQL and Redis start, keep their data across a restart, and stop cleanly.

These tests start real servers in a fresh folder under /tmp and need neither Django's database nor the
servers the suite runs against. /tmp keeps the unix socket path short (about 107 bytes at most) and
already lets every user traverse it, which pgserver needs when it runs PostgreSQL as its own system user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from config.embedded import EmbeddedError, EmbeddedPostgres, EmbeddedRedis, EmbeddedServices, free_port

pytestmark = pytest.mark.embedded

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Overrides the suite's cache-clearing fixture: these tests never touch Django's cache."""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fo-", dir="/tmp"))
    yield path
    _kill_servers_in(path)
    shutil.rmtree(path, ignore_errors=True)


def _kill_servers_in(path: Path) -> None:
    """Whatever a failed test left running in ``path`` is stopped, so no server outlives the suite."""
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        info = process.info
        mentions = " ".join(info["cmdline"] or []) + " " + (info["cwd"] or "")
        if info["name"] in {"postgres", "redis-server"} and str(path) in mentions:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGQUIT if info["name"] == "postgres" else signal.SIGKILL)


@pytest.fixture
def postgres(short_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(short_dir / "pgdata")
    yield server
    server.stop()


@pytest.fixture
def redis_server(short_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(short_dir / "redis", port=free_port(), strict_port=True)
    yield server
    server.stop()


def test_embedded_postgres_keeps_its_data_across_a_restart(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    assert url == f"postgres://postgres@{str(postgres.data_dir).replace('/', '%2F')}/fleetops"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE probe (note text)")
        connection.execute("INSERT INTO probe VALUES ('kept')")
        assert connection.execute("SELECT current_database()").fetchone() == ("fleetops",)
        # No TCP listener at all: the server is reached only through its unix socket.
        assert connection.execute("SHOW listen_addresses").fetchone() == ("",)

    postgres.stop()
    assert not postgres.is_running
    assert not (postgres.data_dir / "postmaster.pid").exists()

    assert postgres.start() == url
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT note FROM probe").fetchall() == [("kept",)]


def test_embedded_postgres_starts_over_a_stale_postmaster_pid(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    postgres.stop()
    # After a crash and a reboot the pid in postmaster.pid often belongs to an unrelated live process.
    folder = str(postgres.data_dir)
    stale = [str(os.getpid()), folder, "1700000000", "5432", folder, "", "0 0", "ready"]
    (postgres.data_dir / "postmaster.pid").write_text("\n".join(stale) + "\n")

    assert postgres.start() == url
    assert postgres.is_running
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_embedded_redis_binds_only_to_localhost_and_keeps_data_across_a_restart(
    redis_server: EmbeddedRedis,
) -> None:
    url = redis_server.start()
    assert url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(url)
    assert client.config_get("bind") == {"bind": "127.0.0.1"}
    client.set("fleetops:probe", "kept")
    client.close()

    redis_server.stop()
    assert not redis_server.is_running
    assert (redis_server.data_dir / "dump.rdb").exists()

    assert redis_server.start() == url
    client = redis.Redis.from_url(url)
    assert client.get("fleetops:probe") == b"kept"
    client.close()


def test_embedded_redis_does_not_take_a_port_another_program_holds(short_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        with pytest.raises(EmbeddedError, match="taken by another program"):
            EmbeddedRedis(short_dir / "redis", port=taken, strict_port=True).start()

        fallback = EmbeddedRedis(short_dir / "redis", port=taken)
        try:
            url = fallback.start()
            assert fallback.port != taken
            assert redis.Redis.from_url(url).ping()
        finally:
            fallback.stop()


def _owner_in_another_process(data_dir: Path, port: int) -> subprocess.Popen[str]:
    """Another launcher: starts Redis for ``data_dir``, says ready, stops it when its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from config.embedded import EmbeddedRedis
        server = EmbeddedRedis(Path({str(data_dir)!r}), port={port}, strict_port=True)
        server.start()
        print("ready", flush=True)
        sys.stdin.read()
        server.stop()
        """
    )
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_DIR, text=True, **pipes)
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready"
    return owner


def test_a_server_another_live_process_started_is_shared_and_left_running(short_dir: Path) -> None:
    port = free_port()
    owner = _owner_in_another_process(short_dir / "redis", port)
    try:
        guest = EmbeddedRedis(short_dir / "redis", port=port, strict_port=True)
        guest.start()
        assert not guest.is_owned
        guest.stop()
        assert guest.is_running
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        owner.wait(timeout=20)
    assert not EmbeddedRedis(short_dir / "redis").is_running


def test_a_server_whose_owner_died_is_adopted_and_stopped(short_dir: Path) -> None:
    port = free_port()
    owner = _owner_in_another_process(short_dir / "redis", port)
    owner.kill()  # the launcher is killed; the daemonised server lives on
    owner.wait()

    heir = EmbeddedRedis(short_dir / "redis", port=port, strict_port=True)
    assert heir.start() == f"redis://127.0.0.1:{port}/0"
    assert heir.is_owned
    heir.stop()
    assert not heir.is_running


def test_services_embed_nothing_where_the_urls_are_set(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://fleetops@db.example:5432/fleetops")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")

    with EmbeddedServices(short_dir) as services:
        assert services.urls == {
            "DATABASE_URL": "postgres://fleetops@db.example:5432/fleetops",
            "REDIS_URL": "redis://cache.example:6379/0",
        }
        assert services.postgres is None
        assert services.redis is None
    assert list(short_dir.iterdir()) == []


def test_services_embed_only_the_server_whose_url_is_missing(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", "postgres://fleetops@db.example:5432/fleetops")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", str(port))

    with EmbeddedServices(short_dir) as services:
        assert services.postgres is None
        assert services.redis is not None
        assert services.redis_url == f"redis://127.0.0.1:{port}/0"
        assert redis.Redis.from_url(services.redis_url).ping()
        embedded = services.redis
    assert not embedded.is_running


def test_the_embedded_module_imports_no_django() -> None:
    """The launcher starts the servers before any Django process exists; the module must not need one.

    Loaded from its file: importing the ``config`` package also loads the Celery app, whose kombu
    imports ``django.utils`` on its own.
    """
    check = textwrap.dedent(
        """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("embedded", "config/embedded.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        sys.exit(" ".join(name for name in sys.modules if name.split(".")[0] == "django") or None)
        """
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT_DIR, capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
