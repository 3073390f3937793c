"""Cursors for hand-written SQL on hot paths: prepared once per connection, planned once by PostgreSQL."""

from __future__ import annotations

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def prepared_cursor() -> CursorWrapper:
    """A cursor of the current connection that binds parameters on the server, so psycopg prepares each statement
    once the connection has run it ``DB_PREPARE_THRESHOLD`` times, and PostgreSQL plans it once (planning the
    dispatch statements cost PostgreSQL more than running them: bench/assignment_profile.py).

    Django's cursor wrapper all the same: execute wrappers (the slow-query log), query capture in tests, and
    Django's database errors. Django's own cursors stay client-side (its default), so nothing else changes.
    Parameters are typed by psycopg rather than written into the text: a ``None`` or a ``str`` is sent as
    ``unknown`` and takes its column's type, and an expression that needs another type says so with a cast.
    """
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = psycopg.Cursor(connection.connection)
    # How Django's connection.cursor() wraps the cursor it makes: logged while queries are being captured.
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    return wrapper(cursor, connection)
