"""Liveness answers without I/O; readiness checks PostgreSQL, Redis, the broker and the channel layer, each
timed, and names the one that failed with a 503."""

import pytest
from django.db import connection

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_liveness_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_checks_every_dependency_and_times_it(client):
    response = client.get("/health/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"postgres", "redis", "broker", "channel_layer"}
    assert all(check["ok"] and check["ms"] >= 0 for check in body["checks"].values())
    assert "no-cache" in response["Cache-Control"]


def failed(client) -> set[str]:
    response = client.get("/health/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    return {name for name, check in body["checks"].items() if not check["ok"]}


def test_redis_down_is_a_503_naming_redis(client, settings):
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": CLOSED}}
    assert failed(client) == {"redis"}


def test_postgres_down_is_a_503_naming_postgres(client, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "PORT", 1)
    assert failed(client) == {"postgres"}


def test_broker_down_is_a_503_naming_the_broker(client, monkeypatch):
    connect = celery_app.connection_for_write
    monkeypatch.setattr(celery_app, "connection_for_write", lambda: connect(CLOSED))
    assert failed(client) == {"broker"}


def test_channel_layer_down_is_a_503_naming_it(client, settings):
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [CLOSED]}}}
    assert failed(client) == {"channel_layer"}
