"""The portal's plumbing talks to the real servers: PostgreSQL, Redis cache and sessions, channel layer, Celery."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config.celery import app as celery_app


def test_health_answers_without_touching_the_database(client):
    # No django_db mark: any database access in this test raises.
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_the_database_is_postgresql_through_psycopg3():
    assert connection.vendor == "postgresql"
    assert connection.Database.__name__ == "psycopg"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000


def test_cache_round_trips_through_redis():
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    cache.set("plumbing:probe", {"n": 1}, timeout=30)
    assert cache.get("plumbing:probe") == {"n": 1}


@pytest.mark.django_db
def test_sessions_live_in_the_cache(client, admin_user):
    client.force_login(admin_user)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cache.get(f"django.contrib.sessions.cache{session_key}") is not None


def test_channel_layer_round_trips_through_redis():
    layer = get_channel_layer()

    async def round_trip() -> dict:
        # One event loop throughout: the pub/sub layer keeps a layer, and its subscriptions, per loop.
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "probe.message", "text": "hello"})
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    assert async_to_sync(round_trip)() == {"type": "probe.message", "text": "hello"}


def test_celery_uses_the_redis_broker_and_the_database_scheduler():
    assert celery_app.conf.broker_url == settings.CELERY_BROKER_URL
    assert celery_app.conf.broker_url.startswith("redis://")
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)


def test_asgi_application_routes_http_and_websockets():
    from config.asgi import application

    assert set(application.application_mapping) == {"http", "websocket"}


def test_a_test_run_has_a_cache_key_space_of_its_own():
    assert "-test-" in cache.make_key("probe")
