"""Cached reads of the materialized views, invalidated when a refresh commits.

A generational read-through (``config.generational_cache``). Two kinds of keys, both living as long as the view's
refresh period (``MaterializedView.refresh_period_s``):
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
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from analytics.models import MaterializedView
from config.generational_cache import Cached, new_token, read_through

logger = logging.getLogger("fleetops.analytics.cache")


def _gen_key(view: MaterializedView) -> str:
    return f"analytics:gen:{view.value}"


def _value_key(view: MaterializedView, part: str) -> str:
    return f"analytics:{view.value}:{part}"


def view_cached(view: MaterializedView, part: str, load: Callable[[], Any]) -> Cached:
    """The cached ``part`` of ``view`` (one Redis round trip on a hit), or ``load()`` stored for the next read;
    any Redis error makes it a miss served by ``load()``: the view answers, never an error."""
    return read_through(
        name="analytics",
        gen_key=_gen_key(view),
        value_key=_value_key(view, part),
        ttl_s=view.refresh_period_s,
        load=load,
        logger=logger,
        what=f"{view.value} {part} from the view",
    )


def view_invalidate(view: MaterializedView) -> None:
    """Starts a new generation for ``view``: every value cached before is dead. Run after the refresh commits.

    Never raises: the refresh has committed whatever Redis says.
    """
    try:
        cache.set(_gen_key(view), new_token(), timeout=view.refresh_period_s)
    except Exception:
        logger.error(
            "analytics cache invalidation failed for %s; values read before its refresh may be served for up to %s s",
            view.value,
            view.refresh_period_s,
            exc_info=True,
        )
