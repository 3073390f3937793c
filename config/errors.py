"""The domain's error types. Services raise these; the API maps them to HTTP in one place
(``config/api/errors.py``). ``code`` is stable and machine-readable; ``message`` is for people. Also here: which
database errors mean PostgreSQL is out of reach (``database_unavailable``), a 503 wherever they surface."""

from __future__ import annotations

import psycopg
from django.db import InterfaceError, OperationalError


class DomainError(Exception):
    """A business rule refused the operation."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(DomainError):
    """The request is wrong in a way that is not about one field's format (HTTP 400)."""

    code = "bad_request"


class Conflict(DomainError):
    """The request conflicts with the current state (HTTP 409)."""

    code = "conflict"


class NotFound(DomainError):
    """The thing does not exist, or is not the caller's to see (HTTP 404)."""

    code = "not_found"


class PayloadTooLarge(DomainError):
    """The upload or batch is larger than allowed (HTTP 413)."""

    code = "payload_too_large"


class UnsupportedFile(DomainError):
    """The uploaded file is not of an accepted type (HTTP 415)."""

    code = "unsupported_file_type"


class RuleViolation(DomainError):
    """A business rule refused a well-formed request (HTTP 422)."""

    code = "rule_violation"


# --- The database out of reach ------------------------------------------------------------------------------

#: SQLSTATEs that mean the server went away or is not there yet, rather than that a statement failed: class 08
#: (connection exception) and 57P01-57P03 (terminated by a shutdown or crash, not accepting connections yet).
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")

#: What a 503 of an unreachable database tells the client to wait before retrying, in seconds.
DATABASE_RETRY_AFTER_S = 5


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says PostgreSQL cannot be reached: down, restarting, the connection lost mid-request,
    or no pooled connection within ``DB_POOL_TIMEOUT_S``. Such a request answers 503 with ``Retry-After``: the
    client retries, nothing is wrong with it or with the code. Every other database error (a statement timeout,
    a deadlock, a constraint) is not an outage and keeps its own handling.

    Django wraps psycopg's errors (``django.db.OperationalError``, psycopg's as ``__cause__``); psycopg's own
    client-side errors (connection refused or lost, the pool's ``PoolTimeout``) carry no SQLSTATE.
    """
    if isinstance(error, InterfaceError | psycopg.InterfaceError):
        return True
    if not isinstance(error, OperationalError | psycopg.OperationalError):
        return False
    original = error.__cause__ if isinstance(error, OperationalError) else error
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_OUTAGE_SQLSTATES)
