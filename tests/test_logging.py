"""Structured logs: request ids on responses and in log lines, carried into Celery tasks; slow requests and
slow queries logged with their duration."""

import json
import logging

import pytest
from celery import shared_task
from django.db import connection
from pythonjsonlogger.json import JsonFormatter

from config import logging as fleet_logging
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id_and_keeps_a_sane_one_from_the_caller(client):
    fresh = client.get("/health/")
    assert len(fresh["X-Request-ID"]) == 32
    assert client.get("/health/", HTTP_X_REQUEST_ID="lb-1234-abcd")["X-Request-ID"] == "lb-1234-abcd"
    unsafe = client.get("/health/", HTTP_X_REQUEST_ID="<script>alert(1)</script>")["X-Request-ID"]
    assert unsafe != "<script>alert(1)</script>"
    assert len(unsafe) == 32


def test_a_log_line_is_one_json_object_with_the_request_id(settings):
    handler = logging.StreamHandler()
    handler.addFilter(fleet_logging.RequestIdFilter())
    config = settings.LOGGING["formatters"]["json"]
    assert config["()"] == "pythonjsonlogger.json.JsonFormatter"
    handler.setFormatter(JsonFormatter(**{key: value for key, value in config.items() if key != "()"}))
    record = logging.LogRecord("fleetops.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    token = fleet_logging.request_id.set("req-12345678")
    try:
        handler.filter(record)
        line = handler.format(record)
    finally:
        fleet_logging.request_id.reset(token)
    body = json.loads(line)
    assert (body["message"], body["level"], body["logger"], body["request_id"]) == (
        "hello world",
        "WARNING",
        "fleetops.test",
        "req-12345678",
    )


def test_a_slow_request_is_logged_with_route_status_and_duration(client, settings, caplog):
    settings.SLOW_REQUEST_MS = 0
    with caplog.at_level(logging.WARNING, logger="fleetops.requests"):
        client.get("/health/", HTTP_X_REQUEST_ID="slow-req-0001")
    record = next(r for r in caplog.records if r.name == "fleetops.requests")
    assert (record.message, record.path, record.status) == ("slow request", "/health/", 200)
    assert record.duration_ms >= 0
    assert record.request_id == "slow-req-0001"


def test_a_slow_query_is_logged_with_its_duration_and_text_not_its_parameters(settings, caplog):
    settings.SLOW_QUERY_MS = 50
    fleet_logging.install_slow_query_logger(None, connection)
    with caplog.at_level(logging.WARNING, logger="fleetops.queries"), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.06), %s", ["secret-mobile"])
        cursor.execute("SELECT 1")
    records = [r for r in caplog.records if r.name == "fleetops.queries"]
    assert len(records) == 1
    assert "pg_sleep" in records[0].sql
    assert "secret-mobile" not in records[0].sql
    assert records[0].duration_ms >= 50


@shared_task(name="tests.seen_request_id")
def seen_request_id() -> str:
    return fleet_logging.request_id.get()


def test_the_request_id_travels_into_the_tasks_a_request_queues(settings):
    """Through a real broker message: published with the id in its headers, adopted by the task when it runs."""
    published: list[dict] = []

    def capture(headers=None, **kwargs):
        published.append(dict(headers or {}))

    from celery.signals import before_task_publish

    before_task_publish.connect(capture, weak=False)
    token = fleet_logging.request_id.set("req-into-task-01")
    try:
        with celery_app.connection_for_write() as conn:
            seen_request_id.apply_async(connection=conn, queue="tests-request-id")
    finally:
        fleet_logging.request_id.reset(token)
        before_task_publish.disconnect(capture)
    assert published[-1]["request_id"] == "req-into-task-01"

    # The worker side: a task run with that header sees it as its request id.
    assert seen_request_id.apply(headers={"request_id": "req-into-task-01"}).get() == "req-into-task-01"
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("tests-request-id")


def test_a_slow_composed_statement_is_logged_too(settings, caplog):
    from psycopg import sql

    settings.SLOW_QUERY_MS = 0
    fleet_logging.install_slow_query_logger(None, connection)
    with caplog.at_level(logging.WARNING, logger="fleetops.queries"), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT 1 FROM {}").format(sql.Identifier("django_migrations")))
    assert any("django_migrations" in r.sql for r in caplog.records if r.name == "fleetops.queries")
