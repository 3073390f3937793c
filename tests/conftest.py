"""Shared fixtures: real PostgreSQL and Redis, an isolated cache key space per run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test.utils import override_settings

from tests.layers import GroupListener


@pytest.fixture(autouse=True, scope="session")
def _own_cache_key_space() -> Iterator[None]:
    """This run's cache keys (sessions, rate-limit counters, idempotency keys) and channel-layer groups under a
    prefix of its own.

    Test runs sharing one Redis then never see, count or delete each other's keys.
    """
    suffix = f"-test-{uuid.uuid4().hex[:8]}"
    caches = {
        alias: {**config, "KEY_PREFIX": config.get("KEY_PREFIX", "") + suffix}
        for alias, config in django_settings.CACHES.items()
    }
    layers = {
        alias: {**layer, "CONFIG": {**layer["CONFIG"], "prefix": layer["CONFIG"].get("prefix", "asgi") + suffix}}
        for alias, layer in django_settings.CHANNEL_LAYERS.items()
    }
    with override_settings(CACHES=caches, CHANNEL_LAYERS=layers):
        yield


@pytest.fixture(autouse=True)
def _private_files_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Uploaded files of a test go to its own folder, never the portal's var/private."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "config.storage.PrivateFileStorage", "OPTIONS": {"location": tmp_path / "private"}},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """Argon2 costs ~0.1 s a hash by design; the suite hashes thousands (factories, sign-ups, sign-ins).
    Production's hashers are what ``config/settings.py`` says; tests of hashing itself set them back."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_automatic_assignment_on_intake(settings):  # type: ignore[no-untyped-def]
    """A new order queues no ``orders.assign`` task on the broker; tests of that hook turn it on."""
    settings.ORDER_AUTO_ASSIGN = False


#: Keys a SCAN call walks when clearing the cache (django-redis's default of 10 makes a shared Redis with a
#: few thousand keys cost hundreds of round trips per test).
SCAN_BATCH = 1000


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test leaves no cache keys (sessions live there too) behind.

    Only this run's keys (the cache's key prefix) are deleted: a shared Redis keeps everything else.
    """
    yield
    cache.delete_pattern("*", itersize=SCAN_BATCH)  # type: ignore[attr-defined]


@pytest.fixture
def staff_client(client, admin_user):  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    return client


@pytest.fixture
def listen() -> Iterator[Any]:
    """``listen(group, ...)`` hears those channel-layer groups (``tests.layers.GroupListener``) until the test ends."""
    listeners: list[GroupListener] = []

    def start(*groups: str) -> GroupListener:
        listeners.append(GroupListener(list(groups)))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.close()
