"""Refreshing the materialized views: one refresh of a view at a time, readers never blocked, slow ones logged.

The views' SQL is ``analytics/sql/0001_views.sql`` (owned by migration 0001); beat runs the refresh tasks of
``analytics/tasks.py``, which call ``view_refresh``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from analytics import cache
from analytics.models import MaterializedView
from config import routers

logger = logging.getLogger("fleetops.analytics")

#: First half of every refresh's advisory lock key ("AN"); the second is the view's ``lock_key``.
LOCK_NAMESPACE = 0x414E


@dataclass(frozen=True)
class RefreshResult:
    view: str
    refreshed: bool
    duration_ms: float
    concurrently: bool


def refresh_settings(cursor: Any) -> None:
    """The settings the views read (for the current transaction only): what "today" and "on time" mean.

    Also used by whoever runs a view's query by hand (the benchmark's live comparison).
    """
    cursor.execute(
        "SELECT set_config('analytics.time_zone', %s, true), set_config('analytics.on_time_s', %s, true)",
        [settings.TIME_ZONE, str(settings.ANALYTICS_ON_TIME_MINUTES * 60)],
    )


def _refresh(cursor: Any, view: MaterializedView, *, concurrently: bool) -> bool:
    """REFRESH ``view`` in the caller's transaction; returns whether it was CONCURRENTLY (a view never populated
    cannot be: it is then filled the blocking way, which only happens once)."""
    refresh_settings(cursor)
    cursor.execute("SELECT relispopulated FROM pg_class WHERE oid = %s::regclass", [view.table])
    populated = cursor.fetchone()[0]
    concurrently = concurrently and populated
    keyword = "CONCURRENTLY " if concurrently else ""
    cursor.execute(f"REFRESH MATERIALIZED VIEW {keyword}{connection.ops.quote_name(view.table)}")
    return concurrently


@transaction.atomic(durable=True)
def view_refresh(*, view: MaterializedView, concurrently: bool = True) -> RefreshResult:
    """Recomputes ``view``; after commit, the view's cached reads are invalidated (``analytics.cache``).

    With a read replica, the invalidation waits for the replica to replay the refresh (``_invalidate_once_replicated``).

    Locking: a transaction-scoped advisory lock per view, taken with ``pg_try_advisory_xact_lock``. A refresh
    that finds it held returns at once with ``refreshed=False`` (the one running will have the fresher figures
    anyway); the lock dies with its transaction or connection, so a crashed worker leaves nothing to clean up.
    ``CONCURRENTLY`` (the default) builds the new contents next to the old and swaps the differences in:
    readers keep reading the old rows throughout, never blocked. Waiting for a table lock (a migration, a
    manual ``REFRESH``) is bounded by ``ANALYTICS_REFRESH_LOCK_TIMEOUT_MS``: the error is an
    ``OperationalError`` the task retries. A refresh slower than ``ANALYTICS_SLOW_REFRESH_S`` is logged as a
    warning with its duration.

    Idempotent: a refresh computes the view from the tables as they are; running it again changes nothing
    but ``refreshed_at``.
    """
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, view.lock_key])
        if not cursor.fetchone()[0]:
            logger.info("refresh of %s skipped: another refresh of it is running", view.value)
            return RefreshResult(view.value, refreshed=False, duration_ms=0.0, concurrently=concurrently)
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{settings.ANALYTICS_REFRESH_LOCK_TIMEOUT_MS}ms"]
        )
        concurrently = _refresh(cursor, view, concurrently=concurrently)
    transaction.on_commit(partial(_invalidate_once_replicated, view))
    duration_ms = (time.perf_counter() - started) * 1000
    slow = duration_ms > settings.ANALYTICS_SLOW_REFRESH_S * 1000
    logger.log(
        logging.WARNING if slow else logging.INFO,
        "%srefresh of %s took %.0f ms%s",
        "slow " if slow else "",
        view.value,
        duration_ms,
        f" (over ANALYTICS_SLOW_REFRESH_S={settings.ANALYTICS_SLOW_REFRESH_S:g})" if slow else "",
        extra={"view": view.value, "duration_ms": round(duration_ms, 1), "concurrently": concurrently},
    )
    return RefreshResult(view.value, refreshed=True, duration_ms=duration_ms, concurrently=concurrently)


def _invalidate_once_replicated(view: MaterializedView) -> None:
    """Invalidates ``view``'s cached reads once the read replica (if any) has replayed the refresh: a miss reads
    the view there (``config.routers``), and would otherwise store the old rows under the new generation for a
    whole refresh period. A replica still behind after ``DATABASE_REPLICA_WAIT_S``, or unreachable, is logged and
    the cache invalidated all the same (what misses read is then as old as what the cache held)."""
    try:
        replayed = routers.replica_wait(timeout_s=settings.DATABASE_REPLICA_WAIT_S)
    except DatabaseError:
        logger.warning("replica unreachable after the refresh of %s; cached reads invalidated anyway", view.value)
    else:
        if not replayed:
            logger.warning(
                "replica still behind the refresh of %s after %g s; cached reads invalidated anyway",
                view.value,
                settings.DATABASE_REPLICA_WAIT_S,
            )
    cache.view_invalidate(view)


def views_populate(schema_editor: Any) -> None:
    """Fills every view once (migration 0001): they are created WITH NO DATA, and a view never filled can be
    neither read nor refreshed concurrently. Runs in the migration's transaction."""
    with schema_editor.connection.cursor() as cursor:
        for view in MaterializedView:
            _refresh(cursor, view, concurrently=False)
