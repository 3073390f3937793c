"""Shared fixtures: real PostgreSQL and Redis, an isolated cache key space per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _private_files_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Uploaded files of a test go to its own folder, never the portal's var/private."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "config.storage.PrivateFileStorage", "OPTIONS": {"location": tmp_path / "private"}},
    }


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test leaves no cache keys (sessions live there too) behind.

    Only this run's keys (the cache's key prefix) are deleted: a shared Redis keeps everything else.
    """
    yield
    cache.delete_pattern("*")  # type: ignore[attr-defined]


@pytest.fixture
def staff_client(client, admin_user):  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    return client
