"""Refreshing the views: readers are never blocked by a refresh, two refreshes of a view never overlap, a
slow one is logged with its duration, and the task retries a transient database error."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from celery import signals
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from analytics.models import DashboardStats, MaterializedView
from analytics.services import LOCK_NAMESPACE, view_refresh
from analytics.tasks import refresh_dashboard_stats_task
from config.tasks import MAX_RETRIES
from riders.models import DutyStatus, KycStatus
from tests.analytics.factories import refresh_all
from tests.fleet.factories import CityFactory
from tests.orders.factories import OrderFactory
from tests.riders.factories import RiderFactory

STATS = MaterializedView.DASHBOARD_STATS
#: Committed tests read the views, and their refreshes wait for the replica: on ``replica`` when there is one
#: (``DATABASE_REPLICA_URL``; ``config.routers``).
COMMITTED = pytest.mark.django_db(transaction=True, databases="__all__")


@contextmanager
def other_session() -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own to the test database, as another process (a worker, psql) would have."""
    params = connection.settings_dict
    with psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
    ) as session:
        yield session


def _stats_orders_today(code: str) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '500ms'")  # a blocked read fails here instead of waiting
        cursor.execute("SELECT orders_today FROM analytics_dashboard_stats WHERE city_code = %s", [code])
        return cursor.fetchone()[0]


class BlockedRefresh:
    """A refresh of ``view`` started in a thread and held up inside its REFRESH statement: another session holds
    a lock on a table the view reads, so the refresh has its view lock and advisory lock and waits."""

    def __init__(self, view: MaterializedView, table: str) -> None:
        self.view, self.table = view, table
        self.result: Any = None
        self.error: BaseException | None = None

    def __enter__(self) -> BlockedRefresh:
        self._session_cm = other_session()
        session = self._session_cm.__enter__()
        session.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
        self._session = session
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        try:
            self._wait_until_waiting()
        except BaseException:
            self.release()
            raise
        return self

    def _run(self) -> None:
        try:
            self.result = view_refresh(view=self.view)
        except BaseException as error:
            self.error = error
        finally:
            connections.close_all()

    def _wait_until_waiting(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._session.execute("SELECT pg_stat_clear_snapshot()")  # the view is read once per transaction
            row = self._session.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'REFRESH%%'"
            ).fetchone()
            if row and row[0]:
                return
            if not self._thread.is_alive():
                raise AssertionError(f"the refresh did not wait: {self.result or self.error!r}")
            time.sleep(0.02)
        raise AssertionError("the refresh never started waiting")

    def release(self) -> None:
        self._session.rollback()
        self._thread.join(timeout=20)
        self._session_cm.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive() or not self._session.closed:
            self.release()


@pytest.fixture
def committed_city(transactional_db: None) -> Iterator[Any]:
    """A city with one order and an on-duty rider, committed (the other sessions must see it), views refreshed.
    Afterwards the views are refreshed again, over the emptied tables, so no row outlives the test."""
    city = CityFactory(code="RFR")
    now = timezone.now()
    RiderFactory(
        city=city, duty_status=DutyStatus.ON, duty_changed_at=now, kyc_status=KycStatus.APPROVED, kyc_reviewed_at=now
    )
    OrderFactory(city=city)
    refresh_all()
    yield city
    refresh_all()


@COMMITTED
def test_readers_read_the_old_figures_while_a_refresh_runs_then_the_new_ones(committed_city):
    OrderFactory(city=committed_city)
    with BlockedRefresh(STATS, "fleet_riderdaydistance") as refresh:
        # The refresh holds its lock on the view and waits inside REFRESH ... CONCURRENTLY: reads go on.
        assert _stats_orders_today("RFR") == 1
        assert DashboardStats.objects.get(city=committed_city).orders_today == 1
        refresh.release()
    assert refresh.error is None
    assert refresh.result.refreshed
    assert _stats_orders_today("RFR") == 2


@COMMITTED
def test_a_refresh_started_while_another_runs_is_skipped_not_queued(committed_city):
    with BlockedRefresh(STATS, "fleet_riderdaydistance") as running:
        started = time.monotonic()
        second = view_refresh(view=STATS)
        assert (second.refreshed, time.monotonic() - started < 1) == (False, True)
        # Another view has a lock of its own (and reads no distances).
        assert view_refresh(view=MaterializedView.RIDER_PERFORMANCE_SUMMARY).refreshed
        running.release()
    assert running.error is None
    assert running.result.refreshed
    assert view_refresh(view=STATS).refreshed  # the lock went with the first refresh's transaction


@pytest.mark.django_db
def test_a_refresh_waits_for_no_one_holding_the_views_advisory_lock():
    """The lock is PostgreSQL's, so a refresh in another process (a second worker, beat firing twice) counts."""
    with other_session() as session:
        session.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, STATS.lock_key])
        assert view_refresh(view=STATS).refreshed is False
        session.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, STATS.lock_key])
    assert view_refresh(view=STATS).refreshed is True


@pytest.mark.django_db
def test_every_refresh_is_logged_with_its_duration_and_a_slow_one_as_a_warning(settings, caplog):
    caplog.set_level(logging.INFO, logger="fleetops.analytics")
    view_refresh(view=STATS)
    settings.ANALYTICS_SLOW_REFRESH_S = 0
    result = view_refresh(view=STATS)
    quick, slow = caplog.records[-2:]
    assert (quick.levelno, quick.view, quick.concurrently) == (logging.INFO, "dashboard_stats", True)
    assert (slow.levelno, slow.view) == (logging.WARNING, "dashboard_stats")
    assert slow.getMessage().startswith("slow refresh of dashboard_stats took ")
    assert slow.duration_ms == pytest.approx(result.duration_ms, abs=0.1)


@pytest.mark.django_db
def test_the_refresh_task_retries_a_lock_timeout_and_then_succeeds(settings):
    """A table lock held elsewhere (a migration, a manual REFRESH) times the refresh out: OperationalError,
    retried with backoff; the second attempt, once the lock is gone, refreshes."""
    settings.ANALYTICS_REFRESH_LOCK_TIMEOUT_MS = 100
    retries: list[Any] = []
    with other_session() as session:
        session.execute("LOCK TABLE fleet_city IN ACCESS EXCLUSIVE MODE")

        def on_retry(request: Any, reason: Any, **kwargs: Any) -> None:
            retries.append(reason)
            session.rollback()  # the lock is gone before the next attempt

        signals.task_retry.connect(on_retry, weak=False)
        try:
            result = refresh_dashboard_stats_task.apply()
        finally:
            signals.task_retry.disconnect(on_retry)
    assert result.successful(), result.traceback
    assert result.result["refreshed"] is True
    assert len(retries) == 1
    assert isinstance(retries[0].exc, OperationalError)
    assert 0 <= retries[0].when <= 1  # backoff: up to 2**0 s before the first retry (full jitter)


@pytest.mark.django_db
def test_the_refresh_task_gives_up_after_three_retries(settings):
    settings.ANALYTICS_REFRESH_LOCK_TIMEOUT_MS = 50
    retries: list[Any] = []

    def on_retry(reason: Any, **kwargs: Any) -> None:
        retries.append(reason.when)

    with other_session() as session:
        session.execute("LOCK TABLE fleet_city IN ACCESS EXCLUSIVE MODE")
        signals.task_retry.connect(on_retry, weak=False)
        try:
            result = refresh_dashboard_stats_task.apply()
        finally:
            signals.task_retry.disconnect(on_retry)
            session.rollback()
    assert result.failed()
    assert isinstance(result.result, OperationalError)
    assert len(retries) == MAX_RETRIES
    # Exponential backoff with full jitter: retry n waits at most 2**n seconds.
    assert all(0 <= when <= 2**attempt for attempt, when in enumerate(retries))
