"""Structured logs: one JSON object a line, each carrying the request id of the request (or Celery task) that
wrote it; the request id travels from a request into the tasks it queues; slow requests and slow queries are
logged with their duration.

The request id is the caller's ``X-Request-ID`` when it sends a sane one (a load balancer's, a partner's), else
a new one; every response carries it back. It lives in a context variable, so threads and asyncio tasks keep
their own.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config import metrics

request_id: ContextVar[str] = ContextVar("request_id", default="")

#: What a request id from outside may look like: a UUID or any short token of safe characters.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

requests_logger = logging.getLogger("fleetops.requests")
queries_logger = logging.getLogger("fleetops.queries")


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (empty outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RequestMiddleware:
    """First in the stack: the request id (set, and sent back as ``X-Request-ID``), the time Django spent
    (``X-Response-Time``, milliseconds), and a warning for a request slower than ``SLOW_REQUEST_MS``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        token = request_id.set(incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response["X-Response-Time"] = f"{elapsed_ms:.1f}ms"
            response["X-Request-ID"] = request_id.get()
            metrics.REQUEST_LATENCY.labels(
                route=metrics.route_of(request), method=request.method, status=response.status_code
            ).observe(elapsed_ms / 1000)
            if elapsed_ms >= settings.SLOW_REQUEST_MS:
                requests_logger.warning(
                    "slow request",
                    extra={
                        "method": request.method,
                        "path": request.path[:300],
                        "route": metrics.route_of(request),
                        "status": response.status_code,
                        "duration_ms": round(elapsed_ms, 1),
                    },
                )
            return response
        finally:
            request_id.reset(token)


def slow_query_logger(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    """A database execute wrapper: logs a statement slower than ``SLOW_QUERY_MS`` (its text, not its
    parameters, which may hold personal data)."""
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms >= settings.SLOW_QUERY_MS:
            text = sql if isinstance(sql, str) else repr(sql)  # psycopg's composed SQL (DDL) is not a str
            queries_logger.warning("slow query", extra={"duration_ms": round(elapsed_ms, 1), "sql": text[:2000]})


def install_slow_query_logger(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: wraps the connection's statements once (a pooled connection is
    "created" again each time Django takes it from the pool)."""
    if slow_query_logger not in connection.execute_wrappers:
        connection.execute_wrappers.append(slow_query_logger)


# --- Celery: the request id goes with the task message, and is the task's while it runs ---------------------


def task_publish_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """``before_task_publish``: the current request id into the message's headers."""
    current = request_id.get()
    if headers is not None and current and "request_id" not in headers:
        headers["request_id"] = current


def task_adopt_request_id(task: Any = None, **kwargs: Any) -> None:
    """``task_prerun``: the message's request id (or the task id, for beat's) becomes the task's.

    A worker puts a message's own headers on ``task.request`` as attributes; ``apply`` (eager) keeps them in
    ``task.request.headers``."""
    if task is None:
        return
    incoming = getattr(task.request, "request_id", None) or (task.request.headers or {}).get("request_id")
    request_id.set(incoming or task.request.id or "")


def connect_signals() -> None:
    """Wires the slow-query wrapper and the request id's trip through Celery; called once, when Django has
    configured logging (``config/__init__.py`` imports the Celery app, which calls this)."""
    from celery.signals import before_task_publish, task_prerun
    from django.db.backends.signals import connection_created

    connection_created.connect(install_slow_query_logger, dispatch_uid="fleetops.slow_queries")
    before_task_publish.connect(task_publish_request_id, dispatch_uid="fleetops.request_id.publish")
    task_prerun.connect(task_adopt_request_id, dispatch_uid="fleetops.request_id.run")
