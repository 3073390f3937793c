"""Cached reads of the materialized views, invalidated when a refresh commits.

Two kinds of keys, both living as long as the view's refresh period (``MaterializedView.refresh_period_s``):
``analytics:gen:<view>``, a random generation token, and ``analytics:<view>:<part>``, a value read from the
view, stamped with the generation it was read under. A refresh, once committed, replaces the view's token
(one SET): every value read before is dead at once, whatever city or limit it was for. Replacing a token
instead of deleting values also closes the read-through race: a reader that read the view just before the
refresh committed stores its (old) value under the old token, which nobody asks for any more.

Redis is never needed for correctness: a read that cannot reach Redis is served from the view (a miss), and a
failed invalidation is logged (the old values then live at most until their TTL).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from analytics.models import MaterializedView
from config import metrics

logger = logging.getLogger("fleetops.analytics.cache")


@dataclass(frozen=True)
class Cached:
    value: Any
    hit: bool


def _gen_key(view: MaterializedView) -> str:
    return f"analytics:gen:{view.value}"


def _value_key(view: MaterializedView, part: str) -> str:
    return f"analytics:{view.value}:{part}"


def _token() -> int:
    return secrets.randbits(62)


def view_cached(view: MaterializedView, part: str, load: Callable[[], Any]) -> Cached:
    """``_view_cached``, counted in the ``analytics`` cache's hits and misses (``/metrics``)."""
    cached = _view_cached(view, part, load)
    metrics.cache_result("analytics", cached.hit)
    return cached


def _view_cached(view: MaterializedView, part: str, load: Callable[[], Any]) -> Cached:
    """The cached ``part`` of ``view`` (one Redis round trip on a hit), or ``load()`` stored for the next read.

    Any Redis error makes this a miss served by ``load()``: the view answers, never an error.
    """
    gen_key, value_key = _gen_key(view), _value_key(view, part)
    ttl = view.refresh_period_s
    try:
        found = cache.get_many([gen_key, value_key])
        gen = found.get(gen_key)
        stored = found.get(value_key)
        if gen is not None and isinstance(stored, dict) and stored.get("gen") == gen:
            return Cached(value=stored["value"], hit=True)
        if gen is None:
            fresh = _token()
            gen = fresh if cache.add(gen_key, fresh, timeout=ttl) else cache.get(gen_key)
    except Exception:  # Redis down or slow: the view answers
        logger.warning("analytics cache unavailable; reading %s %s from the view", view.value, part, exc_info=True)
        return Cached(value=load(), hit=False)
    # The view is read only after the generation: a refresh committing from here on replaces ``gen``.
    value = load()
    if gen is not None:
        try:
            cache.set(value_key, {"gen": gen, "value": value}, timeout=ttl)
        except Exception:
            logger.warning("analytics cache unavailable; %s %s not stored", view.value, part, exc_info=True)
    return Cached(value=value, hit=False)


def view_invalidate(view: MaterializedView) -> None:
    """Starts a new generation for ``view``: every value cached before is dead. Run after the refresh commits.

    Never raises: the refresh has committed whatever Redis says.
    """
    try:
        cache.set(_gen_key(view), _token(), timeout=view.refresh_period_s)
    except Exception:
        logger.error(
            "analytics cache invalidation failed for %s; values read before its refresh may be served for up to %s s",
            view.value,
            view.refresh_period_s,
            exc_info=True,
        )
