"""Prometheus metrics: ``GET /metrics`` in the text exposition format (prometheus-client).

Counted where they happen: request latency by route, method and status (``config.logging.RequestMiddleware``),
GPS points ingested, assignments, ledger postings, cache hits and misses, open websockets. Read when scraped:
Celery queue depth per queue (the broker) and the database pool's use (this process's pool).

Several worker processes (gunicorn, uvicorn ``--workers``) each count their own; with
``PROMETHEUS_MULTIPROC_DIR`` set (an empty folder, emptied at each start; the launcher does it) every process
writes its values there and a scrape of any one of them reports the sum. The endpoint answers only with
``Authorization: Bearer <METRICS_TOKEN>`` when that setting is set, otherwise only to clients in
``METRICS_ALLOWED_NETWORKS`` (loopback and private ranges by default): the figures are not for the public.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("fleetops.metrics")

REQUEST_LATENCY = Histogram(
    "fleetops_http_request_duration_seconds",
    "Time Django spent on a request, by route pattern, method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POINTS_INGESTED = Counter("fleetops_gps_points_ingested_total", "GPS points stored (duplicates and rejects not).")
ASSIGNMENTS = Counter("fleetops_assignments_total", "Orders offered to a rider, by how the rider was chosen.", ["kind"])
LEDGER_POSTINGS = Counter("fleetops_ledger_postings_total", "Ledger entries posted (replays not), by type.", ["type"])
CACHE_REQUESTS = Counter(
    "fleetops_cache_requests_total", "Cached reads, by cache and hit or miss.", ["cache", "result"]
)
WEBSOCKETS_OPEN = Gauge(
    "fleetops_websockets_open", "Websockets open now, by kind.", ["kind"], multiprocess_mode="livesum"
)


def cache_result(name: str, hit: bool) -> None:
    CACHE_REQUESTS.labels(cache=name, result="hit" if hit else "miss").inc()


class RuntimeCollector(Collector):
    """What is read at scrape time: each Celery queue's waiting messages and this process's database pool."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from config.queues import queue_depths

        depth = GaugeMetricFamily(
            "fleetops_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        try:
            for queue, count in queue_depths().items():
                depth.add_metric([queue], count)
        except Exception:  # the broker down: the scrape still answers, without this family's samples
            logger.warning("metrics: queue depth unavailable", exc_info=True)
        yield depth

        from django.db import connections

        pool_gauge = GaugeMetricFamily(
            "fleetops_db_pool_connections",
            "This process's database pool: connections by state (size, available, waiting requests).",
            labels=["alias", "state"],
        )
        for alias in connections:
            pool = getattr(connections[alias], "pool", None)
            if pool is None:
                continue
            stats = pool.get_stats()
            pool_gauge.add_metric([alias, "size"], stats.get("pool_size", 0))
            pool_gauge.add_metric([alias, "available"], stats.get("pool_available", 0))
            pool_gauge.add_metric([alias, "waiting"], stats.get("requests_waiting", 0))
            pool_gauge.add_metric([alias, "max"], pool.max_size)
        yield pool_gauge


@cache
def registry() -> CollectorRegistry:
    """The registry a scrape reads: every process's values when multiprocess, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
        shared.register(RuntimeCollector())
        return shared
    REGISTRY.register(RuntimeCollector())
    return REGISTRY


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def route_of(request: Any) -> str:
    """The URL pattern a request matched (``api/v1/orders/<int:order_id>/``): bounded label values."""
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "unmatched"
