"""Liveness and readiness.

``/health/`` answers when the process does: no I/O, for a supervisor deciding whether to restart it.
``/health/ready/`` checks what a request needs, each with its latency: PostgreSQL, Redis (cache, sessions,
rate limits, live state), the Celery broker and the channel layer. Any failure is a 503 whose JSON names it,
so a load balancer takes the node out of rotation and the on-call sees which dependency broke. Each check has
its own short timeout and none waits for the database pool: a probe must answer in about a second even when
everything behind it hangs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection

from config import realtime

logger = logging.getLogger("fleetops.health")

#: Seconds each check may take before it counts as failed.
CHECK_TIMEOUT_S = 2


def _postgres() -> None:
    # A connection of its own, not one of the pool's: with PostgreSQL down the pool would make the probe wait
    # its whole timeout, and with the pool exhausted by a slow query a probe must still tell the database is up.
    params = {**connection.get_connection_params(), "connect_timeout": CHECK_TIMEOUT_S}
    with psycopg.connect(**params) as conn:
        conn.execute("SELECT 1")


def _redis() -> None:
    get_redis_connection("default").ping()


def _broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)


def _channel_layer() -> None:
    realtime.publish("health.ready", "health.ping", {})  # a group nobody joins: the layer takes it or fails


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _postgres,
    "redis": _redis,
    "broker": _broker,
    "channel_layer": _channel_layer,
}


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers; touches no database, cache or broker."""
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: every dependency answers. 200, or 503 naming the ones that failed and why."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # any failure of a dependency is what this view reports
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
            logger.warning("readiness: %s failed", name, exc_info=True)
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    ok = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
