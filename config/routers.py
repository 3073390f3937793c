"""Where queries go: the analytics read model may be read from a streaming replica, everything else is the primary's.

With ``DATABASE_REPLICA_URL`` set, ``DATABASES`` has a ``replica`` alias (``config/settings.py``). Reads of the
analytics app's models (unmanaged models over the materialized views, which the app never writes) go to it;
every other read, every write and every migration goes to ``default``. Without the alias every read is the
primary's, and nothing here costs more than a dictionary lookup.

Two rules keep the replica's lag from showing:
- Inside a transaction on the primary every read stays there: the transaction's own writes (a view refreshed
  and read back in the same transaction) are visible only there, and a transaction's reads belong to its
  snapshot.
- The view refreshes run on the primary (``REFRESH MATERIALIZED VIEW CONCURRENTLY`` writes) and invalidate the
  views' cached reads only once the replica has replayed them (``replica_wait``, called after commit by
  ``analytics.services.view_refresh``): a reader that misses then reads the refreshed rows from the replica,
  never the old ones under the new cache generation.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

REPLICA = "replica"
#: Apps whose unmanaged models are a read-only report model, fit to be read a little behind the primary.
REPLICA_APPS = frozenset({"analytics"})

#: Whether the server behind a cursor has replayed the WAL up to a position. A server not in recovery is the
#: primary itself (the test suite's mirror, or an alias pointed back at the primary): it has everything.
_REPLAYED_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false) ELSE true END"
)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def _on_replica(model: type[Model]) -> bool:
    return model._meta.app_label in REPLICA_APPS and not model._meta.managed


class PrimaryReplicaRouter:
    """``DATABASE_ROUTERS``: the analytics views' reads on ``replica`` (when there is one and no transaction is
    open on the primary), everything else on ``default``.

    Every answer is an alias, never None: Django would otherwise follow a related object's instance to the
    database it came from, and a rider reached from a leaderboard row read on the replica would be read there too.
    """

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if _on_replica(model) and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        """The replica is a copy of the primary: rows read from either may be related."""
        aliases = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        """Only the primary is migrated; a streaming replica replays the primary's schema."""
        return db == DEFAULT_DB_ALIAS


def replica_replayed_wait(cursor: Any, *, lsn: str, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Polls the server of ``cursor`` until it has replayed the WAL up to ``lsn`` (a ``pg_lsn`` text, e.g. from
    ``pg_current_wal_lsn()`` on the primary); returns whether it did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        cursor.execute(_REPLAYED_SQL, [lsn])
        if cursor.fetchone()[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def replica_wait(*, timeout_s: float) -> bool:
    """Waits until the replica shows everything committed on the primary so far; returns whether it does.

    True at once without a replica, and inside a transaction on the primary: none of it is committed yet, and
    reads in a transaction are the primary's anyway (``PrimaryReplicaRouter.db_for_read``).
    """
    if not replica_configured() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return True
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (lsn,) = cursor.fetchone()
    with connections[REPLICA].cursor() as cursor:
        return replica_replayed_wait(cursor, lsn=lsn, timeout_s=timeout_s)
