"""A read-through cache in Redis that writers invalidate by replacing a generation token.

Two keys per cached thing: a generation key holding a random token, and a value key holding the value stamped
with the token it was read under. A value is served only while its stamp equals the current token, so an
invalidation is one SET of a new token; replacing a token instead of deleting values also closes the
read-through race (a reader that read the source just before a write committed stores its old value under the
old token, which nobody asks for any more). The wallet's summary and the analytics views' reads are built on it.

Redis is never needed for correctness: a read that cannot reach Redis is served by ``load()`` (a miss).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from config import metrics


@dataclass(frozen=True)
class Cached:
    value: Any
    hit: bool


def new_token() -> int:
    """A new generation: an integer, which django-redis stores unpickled (a raw ``SET`` writes the same)."""
    return secrets.randbits(62)


def read_through(
    *, name: str, gen_key: str, value_key: str, ttl_s: int, load: Callable[[], Any], logger: logging.Logger, what: str
) -> Cached:
    """The value under ``value_key`` if it was stored under the current generation (one Redis round trip), else
    ``load()`` stored for the next read; counted in cache ``name``'s hits and misses (``/metrics``). Any Redis
    error makes it a miss served by ``load()``, logged with ``what`` (what was read, from where)."""
    cached = _read_through(name, gen_key, value_key, ttl_s, load, logger, what)
    metrics.cache_result(name, cached.hit)
    return cached


def _read_through(
    name: str, gen_key: str, value_key: str, ttl_s: int, load: Callable[[], Any], logger: logging.Logger, what: str
) -> Cached:
    try:
        found = cache.get_many([gen_key, value_key])
        gen = found.get(gen_key)
        stored = found.get(value_key)
        if gen is not None and isinstance(stored, dict) and stored.get("gen") == gen:
            return Cached(value=stored["value"], hit=True)
        if gen is None:
            fresh = new_token()
            gen = fresh if cache.add(gen_key, fresh, timeout=ttl_s) else cache.get(gen_key)
    except Exception:  # Redis down or slow: the source answers
        logger.warning("%s cache unavailable; reading %s", name, what, exc_info=True)
        return Cached(value=load(), hit=False)
    # The source is read only after the generation: an invalidation from here on replaces ``gen``.
    value = load()
    if gen is not None:
        try:
            cache.set(value_key, {"gen": gen, "value": value}, timeout=ttl_s)
        except Exception:
            logger.warning("%s cache unavailable; %s not stored", name, what, exc_info=True)
    return Cached(value=value, hit=False)
