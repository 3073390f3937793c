"""Rate limits on django-ratelimit's Redis counters, as DRF throttles (so a refusal is a 429 in the shape).

A view names its limit with ``ratelimit_scope``; the rate comes from ``settings.API_RATE_LIMITS``.
Authenticated calls count per token, anonymous calls per client IP. Counters live in the default
cache (Redis), so every web worker shares them; if Redis fails, requests pass (fail open) with a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("fleetops.api.ratelimit")


def client_key(group: str, request: Any) -> str:
    auth = getattr(request, "auth", None)
    if auth is not None and getattr(auth, "key", None):
        return f"token:{auth.key}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


class RateLimit(BaseThrottle):
    """Counts the request against the view's scope; ``wait()`` gives the seconds until the window resets."""

    def __init__(self) -> None:
        self.time_left: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "ratelimit_scope", None) or ("driver" if request.auth is not None else "anonymous")
        rate = settings.API_RATE_LIMITS.get(scope)
        if not rate:
            return True
        try:
            usage = get_usage(request, group=f"api:{scope}", key=client_key, rate=rate, increment=True)
        except Exception:  # Redis down: availability beats the limit
            logger.warning("rate limit counter unavailable; letting the request through", exc_info=True)
            return True
        if usage is None or not usage["should_limit"]:
            return True
        self.time_left = usage["time_left"]
        return False

    def wait(self) -> float | None:
        return float(self.time_left) if self.time_left is not None else None
