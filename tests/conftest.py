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
    """Each test starts with an empty cache (sessions live there too) and leaves nothing behind."""
    yield
    cache.clear()


@pytest.fixture
def staff_client(client, admin_user):  # type: ignore[no-untyped-def]
    client.force_login(admin_user)
    return client
