"""One command to run FleetOps, one to test it: ``python -m config.launcher run|test|services [args]``.

``run``       starts the embedded PostgreSQL / Redis where ``DATABASE_URL`` / ``REDIS_URL`` are unset,
              migrates, collects static files, creates or resets the ``admin`` login, seeds demo data,
              then runs and supervises the web server, Celery worker and beat, and the rider simulator.
``test``      the same servers, then ``ruff check .``, ``mypy .`` and ``pytest [args]``.
``services``  only the servers, until Ctrl-C (for ``manage.py`` in another shell: ``source var/run.env``).

Every child gets the same ``DATABASE_URL`` and ``REDIS_URL``. On Ctrl-C, SIGTERM or the death of any child,
all children are stopped (SIGTERM, then SIGKILL after a grace period) and then Redis and PostgreSQL.
Django is never imported here: the children load it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from config.embedded import EmbeddedError, EmbeddedServices, port_is_free, var_dir_from

# Taken as the module loads: the cold start counts from here (Python's own start-up, ~0.1 s, is not in it;
# psutil's process create_time is only accurate to the clock tick and can read later than this).
LOADED_AT = time.monotonic()

PROJECT_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(PROJECT_DIR / "manage.py")]
STOP_GRACE_S = 10.0
HEALTH_TIMEOUT_S = 120.0
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
USAGE = "usage: python -m config.launcher run | serve | test [pytest args] | services"

# Creates or resets the admin login; the password arrives in the environment, not on a command line.
ADMIN_SNIPPET = """
import os
from django.contrib.auth import get_user_model
User = get_user_model()
user, created = User._default_manager.get_or_create(**{User.USERNAME_FIELD: "admin"})
user.is_staff = user.is_superuser = user.is_active = True
if hasattr(user, "email") and not user.email:
    user.email = "admin@fleetops.local"
user.set_password(os.environ["FLEETOPS_ADMIN_PASSWORD"])
user.save()
print("created superuser admin" if created else "reset the password of superuser admin")
"""


# --- Console -------------------------------------------------------------------------------------------

COLORS = ["36", "33", "32", "35", "34", "31", "96", "93"]


class Console:
    """Writes lines prefixed with a time and the name of their source, as honcho and foreman do."""

    def __init__(self, stream: IO[str] = sys.stdout) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.color = stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.width = 8
        self.colors: dict[str, str] = {"fleetops": "1"}
        self.is_closed = False

    def register(self, name: str) -> None:
        self.width = max(self.width, len(name))
        self.colors.setdefault(name, COLORS[(len(self.colors) - 1) % len(COLORS)])

    def line(self, name: str, text: str) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self.width}} |"
        if self.color:
            prefix = f"\033[{self.colors.get(name, '0')}m{prefix}\033[0m"
        with self.lock:
            if self.is_closed:
                return
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                # The reader went away (`make run | head`): keep going quietly, so shutdown still happens.
                self.is_closed = True
                with contextlib.suppress(OSError, ValueError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, self.stream.fileno())

    def say(self, text: str) -> None:
        for part in text.splitlines() or [""]:
            self.line("fleetops", part)


console = Console()


def say(text: str) -> None:
    console.say(text)


# --- Signals ---------------------------------------------------------------------------------------------


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived: stop what runs and exit."""


class Signals:
    """Records SIGINT / SIGTERM / SIGHUP for the wait loops to notice.

    The handler only counts: it may interrupt the main thread anywhere, so it takes no lock (setting a
    threading.Event there can deadlock on the Event's own lock).
    """

    def __init__(self) -> None:
        self.count = 0
        self.name = ""

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.name = signal.Signals(signum).name

    @property
    def received(self) -> bool:
        return self.count > 0

    def check(self) -> None:
        if self.received:
            raise StopRequested(self.name)

    def sleep(self, seconds: float) -> bool:
        """Sleeps (cut short by a signal); returns whether a signal has arrived."""
        deadline = time.monotonic() + seconds
        while not self.received and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.received


signals = Signals()


# --- Children --------------------------------------------------------------------------------------------


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that has the kernel SIGTERM the child if the launcher itself is killed
    (SIGKILL, OOM), so no web server or worker outlives it. libc is loaded here, not in the forked child."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return hook


DIE_WITH_LAUNCHER = _parent_death_signal()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    reader: threading.Thread

    @property
    def returncode(self) -> int | None:
        return self.process.poll()


def spawn(name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
    """Starts ``argv`` in its own process group (so Ctrl-C reaches only the launcher, which decides the
    order of shutdown) and copies its output to the console line by line, prefixed with ``name``."""
    console.register(name)
    process = subprocess.Popen(
        list(argv),
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=DIE_WITH_LAUNCHER,
    )
    stdout = process.stdout
    assert stdout is not None

    def copy_output() -> None:
        for raw in iter(stdout.readline, b""):
            console.line(name, raw.decode(errors="replace").rstrip("\r\n"))
        stdout.close()

    reader = threading.Thread(target=copy_output, name=f"output-{name}", daemon=True)
    reader.start()
    return Child(name, process, reader)


def _signal_group(child: Child, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signum)


def terminate(children: Sequence[Child], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to each child (its own shutdown stops its workers), SIGKILL to whatever is left after
    ``grace_s`` (a second Ctrl-C shortens the wait), then sweep each process group for strays."""
    running = [child for child in children if child.returncode is None]
    for child in running:
        say(f"stopping {child.name} (pid {child.process.pid})")
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    signals_at_start = signals.count
    while any(child.returncode is None for child in running):
        if time.monotonic() > deadline or signals.count > signals_at_start:
            for child in running:
                if child.returncode is None:
                    say(f"{child.name} did not stop in time: killing it")
                    _signal_group(child, signal.SIGKILL)
            break
        time.sleep(0.05)
    for child in children:
        child.process.wait()
        _signal_group(child, signal.SIGKILL)
        child.reader.join(timeout=2)


def run_step(name: str, argv: Sequence[str], env: dict[str, str]) -> int:
    """Runs one setup command to its end, unless Ctrl-C stops it first."""
    child = spawn(name, argv, env)
    try:
        while child.returncode is None:
            signals.check()
            time.sleep(0.05)
    finally:
        terminate([child])
    return child.process.returncode


def run_steps_together(steps: Sequence[tuple[str, Sequence[str]]], env: dict[str, str]) -> int:
    """Runs independent setup commands at the same time; returns the first failure's code (else 0)."""
    children = [spawn(name, argv, env) for name, argv in steps]
    try:
        while any(child.returncode is None for child in children):
            signals.check()
            time.sleep(0.05)
    finally:
        terminate(children)
    for child in children:
        if child.process.returncode:
            say(f"{child.name} failed with exit code {child.process.returncode}")
            return child.process.returncode
    return 0


def management_command_exists(name: str) -> bool:
    """Whether one of our apps defines ``manage.py <name>`` (checked on disk: no Django start-up)."""
    return any(PROJECT_DIR.glob(f"*/management/commands/{name}.py"))


# --- Shared set-up ---------------------------------------------------------------------------------------


def child_environment(urls: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(urls)
    env.update(extra)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"  # not a stray one from another project's shell
    env["PYTHONUNBUFFERED"] = "1"
    return env


def redacted(url: str) -> str:
    """The URL without its password, for the console and CI logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def write_run_env(path: Path, urls: dict[str, str]) -> None:
    lines = [
        "# Written by `python -m config.launcher` while FleetOps' servers run; removed when they stop.",
        "# In another shell: source var/run.env && .venv/bin/python manage.py shell",
        *(f"export {name}={shlex.quote(value)}" for name, value in urls.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def start_services(var_dir: Path) -> EmbeddedServices:
    services = EmbeddedServices(var_dir, log=say)
    started_at = time.monotonic()
    services.start()
    embedded = [name for name, server in (("PostgreSQL", services.postgres), ("Redis", services.redis)) if server]
    if embedded:
        say(f"embedded {' and '.join(embedded)} ready in {time.monotonic() - started_at:.2f} s")
    say(f"DATABASE_URL={redacted(services.database_url)}")
    say(f"REDIS_URL={redacted(services.redis_url)}")
    return services


def stop_services(services: EmbeddedServices | None, run_env: Path | None = None) -> None:
    if services is None:
        return
    started_at = time.monotonic()
    owned = [server for server in (services.redis, services.postgres) if server is not None and server.is_owned]
    is_shared = services.is_shared
    services.stop()
    if run_env is not None and not is_shared:
        run_env.unlink(missing_ok=True)
    if owned:
        say(f"embedded servers stopped in {time.monotonic() - started_at:.2f} s (data kept in var/)")


def admin_password(var_dir: Path) -> str:
    """The admin password: made once, kept in ``var/admin_password`` (readable by its owner only)."""
    path = var_dir / "admin_password"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


def with_metrics_dir(env: dict[str, str], var_dir: Path) -> dict[str, str]:
    """Web, worker and beat write their metrics to one folder, emptied at each start: /metrics then reports
    what the Celery worker counted too (assignments, postings), not only the web process."""
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        metrics_dir = var_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def migrate_and_collect(env: dict[str, str]) -> int:
    started_at = time.monotonic()
    code = run_steps_together(
        [
            ("migrate", [*MANAGE, "migrate", "--noinput"]),
            ("static", [*MANAGE, "collectstatic", "--noinput", "--verbosity", "0"]),
        ],
        env,
    )
    if not code:
        say(f"database migrated and static files collected in {time.monotonic() - started_at:.1f} s")
    return code


def ensure_admin(env: dict[str, str], password: str) -> int:
    return run_step(
        "admin", [*MANAGE, "shell", "--no-imports", "-c", ADMIN_SNIPPET], {**env, "FLEETOPS_ADMIN_PASSWORD": password}
    )


# --- run -------------------------------------------------------------------------------------------------


def wait_for_health(url: str, children: Sequence[Child]) -> bool:
    """Polls ``url`` until it answers 200; False when a child dies, Ctrl-C arrives, or time runs out."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        signals.check()
        if any(child.returncode is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    return False


def supervise(children: Sequence[Child]) -> int:
    """Waits until a child exits or a signal arrives; returns the launcher's exit code."""
    while True:
        if signals.sleep(0.2):
            say(f"{signals.name} received: stopping everything")
            return 0
        for child in children:
            code = child.returncode
            if code is not None:
                say(f"{child.name} exited with code {code}: stopping everything")
                return exit_status(code)


def cmd_run(args: Sequence[str]) -> int:
    var_dir = var_dir_from(os.environ)
    run_env = var_dir / "run.env"
    port = int(os.environ.get("PORTAL_PORT") or 8000)
    host = "127.0.0.1"
    total = 6
    services: EmbeddedServices | None = None
    children: list[Child] = []

    def step(number: int, text: str) -> None:
        say(f"[{number}/{total}] {text}")

    try:
        if not port_is_free(port, host):
            say(f"{host}:{port} is already in use (another portal?); stop it or set PORTAL_PORT")
            return 1
        step(1, "database and Redis")
        services = start_services(var_dir)
        write_run_env(run_env, services.urls)
        say(f"other shells: source {run_env}")
        env = with_metrics_dir(child_environment(services.urls), var_dir)
        signals.check()

        step(2, "migrate and collectstatic")
        code = migrate_and_collect(env)
        if code:
            return code

        step(3, "admin login")
        password = admin_password(var_dir)
        code = ensure_admin(env, password)
        if code:
            return code

        step(4, "demo data")
        if management_command_exists("seed_demo"):
            started_at = time.monotonic()
            code = run_step("seed", [*MANAGE, "seed_demo"], env)
            if code:
                return code
            say(f"demo data ready in {time.monotonic() - started_at:.1f} s")
        else:
            say("WARNING: no `manage.py seed_demo` command yet: starting without demo data")

        step(5, "web server, Celery worker and beat, simulator")
        # One origin for the browser: uvicorn serves HTTP and websockets from config.asgi. DESIGN.md
        # § Serving measured Django's WSGI path several times faster than its ASGI path, and a deployment
        # would route plain HTTP to gunicorn and only /ws/ to the ASGI server behind one proxy. The
        # one-command run has no proxy, and two ports would be two origins (session cookie, CSRF and
        # websocket origin checks), so here one ASGI server with two workers serves both.
        web_argv = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port)]
        web_argv += ["--workers", "2", "--lifespan", "off"]
        if os.environ.get("PORTAL_ACCESS_LOG", "") not in {"1", "true", "yes", "on"}:
            web_argv.append("--no-access-log")  # the simulator's location batches would drown the console
        celery = [PYTHON, "-m", "celery", "-A", "config"]
        processes: list[tuple[str, list[str]]] = [
            ("web", web_argv),
            ("worker", [*celery, "worker", "-l", "info", "--concurrency", "2", "-Q", "urgent,default,bulk"]),
            ("beat", [*celery, "beat", "-l", "info", "--scheduler", BEAT_SCHEDULER]),
        ]
        if management_command_exists("simulate"):
            processes.append(("simulate", [*MANAGE, "simulate"]))
        else:
            say("WARNING: no `manage.py simulate` command yet: no riders will move")
        for name, argv in processes:
            children.append(spawn(name, argv, env))

        step(6, f"waiting for http://{host}:{port}/health/")
        if not wait_for_health(f"http://{host}:{port}/health/", children):
            say("the portal did not come up")
            return supervise_failure(children)
        cold_start_s = time.monotonic() - LOADED_AT
        banner = [
            "=" * 72,
            f"FleetOps is running:   http://{host}:{port}/admin/",
            f"admin login:           admin / {password}   (kept in {var_dir / 'admin_password'})",
            f"cold start:            {cold_start_s:.1f} s from launch to GET /health/ answering",
            "Ctrl-C stops the portal, then Redis and PostgreSQL (data kept in var/).",
            "=" * 72,
        ]
        say("\n".join(banner))
        return supervise(children)
    except StopRequested as stop:
        return stopped_by(stop)
    finally:
        if children:
            terminate(children)
        stop_services(services, run_env)


def stopped_by(stop: StopRequested) -> int:
    """The launcher's exit status when a signal stopped it: a shell's 128 + N."""
    say(f"{stop} received: stopping")
    return 130 if str(stop) == "SIGINT" else 143


def supervise_failure(children: Sequence[Child]) -> int:
    for child in children:
        if child.returncode is not None:
            say(f"{child.name} exited with code {child.returncode}")
            return exit_status(child.returncode)
    return 1


def exit_status(returncode: int) -> int:
    """The launcher's exit status for a child's: a shell's 128 + N for a signal, never 0 for a death."""
    if returncode < 0:
        return 128 - returncode
    return returncode or 1


# --- serve: the production process model ----------------------------------------------------------------

#: ``make serve``'s pools, each overridable from the environment (DESIGN.md § Serving).
SERVE_DEFAULTS = {
    "SERVE_API_WORKERS": "3",  # gunicorn sync workers: plain HTTP (API, admin, pages)
    "SERVE_SOS_WORKERS": "1",  # gunicorn, the priority lane for /api/v1/driver/emergency/
    "SERVE_WS_WORKERS": "1",  # uvicorn: websockets only
    "SERVE_CELERY_CONCURRENCY": "2",
}
NGINX_TEMPLATE = PROJECT_DIR / "deploy" / "nginx.conf"


def render_nginx(var_dir: Path, host: str, ports: dict[str, int]) -> Path:
    """``deploy/nginx.conf`` with its ``{{ NAME }}`` placeholders filled, under ``var/serve/``."""
    serve_dir = var_dir / "serve"
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (serve_dir / folder).mkdir(parents=True, exist_ok=True)
    values = {"VAR": str(serve_dir), "HOST": host, **{name: str(port) for name, port in ports.items()}}
    text = re.sub(r"\{\{ (\w+) \}\}", lambda match: values[match.group(1)], NGINX_TEMPLATE.read_text())
    path = serve_dir / "nginx.conf"
    path.write_text(text)
    return path


def serve_secret_key(var_dir: Path) -> str:
    """``SECRET_KEY`` from the environment, else one made once and kept in ``var/secret_key`` (owner only)."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = var_dir / "secret_key"
    if not (path.exists() and len(path.read_text().strip()) >= 50):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(60) + "\n")
    return path.read_text().strip()


def cmd_serve(args: Sequence[str]) -> int:
    """The process model DESIGN.md § Serving argues for, on one machine, with ``DEBUG=0``: nginx on the portal's
    port routes ``/ws/`` to uvicorn, the SOS endpoint to a gunicorn pool of its own and the rest to gunicorn's
    sync workers; a Celery worker for every queue and beat. No demo data and no simulator."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        say("make serve needs nginx (Debian: apt-get install nginx-light); `make run` needs nothing but Python")
        return 1
    var_dir = var_dir_from(os.environ)
    run_env = var_dir / "run.env"
    port = int(os.environ.get("PORTAL_PORT") or 8000)
    host = "127.0.0.1"
    ports = {"PORT": port, "API_PORT": port + 1, "SOS_PORT": port + 2, "WS_PORT": port + 3}
    busy = [f"{host}:{p}" for p in ports.values() if not port_is_free(p, host)]
    if busy:
        say(f"{', '.join(busy)} already in use (another portal?); stop it or set PORTAL_PORT")
        return 1
    sizes = {name: os.environ.get(name) or default for name, default in SERVE_DEFAULTS.items()}
    services: EmbeddedServices | None = None
    children: list[Child] = []
    try:
        say("[1/4] database and Redis")
        services = start_services(var_dir)
        write_run_env(run_env, services.urls)
        production = {
            "DEBUG": "0",
            "SECRET_KEY": serve_secret_key(var_dir),
            "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES") or "127.0.0.1/32,::1/128",
            # Plain HTTP on the loopback here; behind a TLS-terminating balancer set it to 1.
            "SECURE_SSL_REDIRECT": os.environ.get("SECURE_SSL_REDIRECT") or "0",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL") or "WARNING",
        }
        env = with_metrics_dir(child_environment(services.urls, **production), var_dir)
        signals.check()

        say("[2/4] migrate and collectstatic")
        code = migrate_and_collect(env) or ensure_admin(env, admin_password(var_dir))
        if code:
            return code

        say("[3/4] nginx, gunicorn (API and SOS pools), uvicorn (websockets), Celery worker and beat")
        gunicorn = [PYTHON, "-m", "gunicorn", "config.wsgi:application", "--worker-class", "sync"]
        gunicorn += ["--graceful-timeout", "5", "--timeout", "60"]  # a hung request is killed, not waited on
        uvicorn = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(ports["WS_PORT"])]
        uvicorn += ["--workers", sizes["SERVE_WS_WORKERS"], "--lifespan", "off", "--no-access-log"]
        uvicorn += ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
        celery = [PYTHON, "-m", "celery", "-A", "config"]
        worker = [*celery, "worker", "-l", "warning", "--concurrency", sizes["SERVE_CELERY_CONCURRENCY"]]
        processes: list[tuple[str, list[str]]] = [
            ("api", [*gunicorn, "--bind", f"{host}:{ports['API_PORT']}", "--workers", sizes["SERVE_API_WORKERS"]]),
            ("sos", [*gunicorn, "--bind", f"{host}:{ports['SOS_PORT']}", "--workers", sizes["SERVE_SOS_WORKERS"]]),
            ("ws", uvicorn),
            ("worker", [*worker, "-Q", "urgent,default,bulk"]),
            ("beat", [*celery, "beat", "-l", "warning", "--scheduler", BEAT_SCHEDULER]),
            ("nginx", [nginx, "-c", str(render_nginx(var_dir, host, ports)), "-e", "stderr"]),
        ]
        for name, argv in processes:
            children.append(spawn(name, argv, env))

        say(f"[4/4] waiting for http://{host}:{port}/health/ready/")
        if not wait_for_health(f"http://{host}:{port}/health/ready/", children):
            say("the portal did not come up")
            return supervise_failure(children)
        pools = ", ".join(f"{name.removeprefix('SERVE_').lower()} {size}" for name, size in sizes.items())
        say(
            "\n".join(
                [
                    "=" * 72,
                    f"FleetOps (DEBUG=0) is serving:   http://{host}:{port}/   ({pools})",
                    f"admin login:  admin / {admin_password(var_dir)}   (kept in {var_dir / 'admin_password'})",
                    "Ctrl-C stops it.",
                    "=" * 72,
                ]
            )
        )
        return supervise(children)
    except StopRequested as stop:
        return stopped_by(stop)
    finally:
        if children:
            terminate(children)
        stop_services(services, run_env)


# --- test ------------------------------------------------------------------------------------------------


def cmd_test(args: Sequence[str]) -> int:
    started_at = time.monotonic()
    var_dir = var_dir_from(os.environ)
    services: EmbeddedServices | None = None
    timings: list[str] = []
    code = 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_keyboard_interrupt)
    try:
        say("database and Redis")
        services = start_services(var_dir)
        env = child_environment(services.urls, **isolated_test_settings(services.redis_url))
        for name, argv in (
            ("ruff", [PYTHON, "-m", "ruff", "check", "."]),
            ("mypy", [PYTHON, "-m", "mypy", "."]),
            ("pytest", [PYTHON, "-m", "pytest", *args]),
        ):
            say(f"{name}: {shlex.join(argv[1:])}")
            step_started_at = time.monotonic()
            code = run_tool(argv, env)
            timings.append(f"{name} {time.monotonic() - step_started_at:.1f} s")
            if code:
                say(f"{name} failed with exit code {code}")
                break
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    finally:
        stop_services(services)
    outcome = "passed" if code == 0 else "FAILED"
    took = ", ".join(timings) or "nothing ran"
    say(f"test suite {outcome} in {time.monotonic() - started_at:.1f} s ({took})")
    return code


def isolated_test_settings(redis_url: str) -> dict[str, str]:
    """Settings that keep a test run off a running portal's Redis data when both share a server
    (``make run`` in one shell, ``make test`` in another): its own cache key prefix (channel-layer names
    follow it), and its own broker database, so the portal's worker never runs a test's task against the
    portal's database."""
    isolation = {"CACHE_KEY_PREFIX": "fleetops-test"}
    if not os.environ.get("CELERY_BROKER_URL"):
        parts = urlsplit(redis_url)
        isolation["CELERY_BROKER_URL"] = urlunsplit((parts.scheme, parts.netloc, "/3", parts.query, ""))
    return isolation


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_tool(argv: Sequence[str], env: dict[str, str]) -> int:
    """Runs a check in our terminal and process group, so Ctrl-C reaches it directly; on an interrupt
    (Ctrl-C, or SIGTERM from a cancelled CI job) it gets SIGINT and a moment to report, as pytest does."""
    process = subprocess.Popen(list(argv), cwd=PROJECT_DIR, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


# --- services --------------------------------------------------------------------------------------------


def cmd_services(args: Sequence[str]) -> int:
    var_dir = var_dir_from(os.environ)
    run_env = var_dir / "run.env"
    services: EmbeddedServices | None = None
    try:
        services = start_services(var_dir)
        write_run_env(run_env, services.urls)
        say(f"in another shell: source {run_env}")
        say("Ctrl-C stops the servers")
        while not signals.sleep(3600):
            pass
        say(f"{signals.name} received: stopping")
        return 0
    finally:
        stop_services(services, run_env)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": cmd_run,
    "serve": cmd_serve,
    "test": cmd_test,
    "services": cmd_services,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command != "test":
        signals.install()
    try:
        return COMMANDS[command](args)
    except EmbeddedError as exc:  # a message that says what to do, not a traceback
        say(f"ERROR: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
