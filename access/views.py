"""The staff sign-in (admin and dashboard), throttled per client IP and per username."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import is_ratelimited

logger = logging.getLogger("fleetops.access")


def _limited(request: HttpRequest) -> bool:
    """Counts a sign-in attempt against its IP and against the username tried; True past either limit.

    Per IP stops one client guessing many accounts; per username stops many clients guessing one. Counters
    live in Redis (shared by every worker); if Redis fails the attempt passes, with a log line, as the API's
    rate limits do: locking every staff member out is worse than an unthrottled minute.
    """
    rate = settings.API_RATE_LIMITS["login"]
    try:
        by_ip = is_ratelimited(request, group="staff-login:ip", key="ip", rate=rate, method="POST", increment=True)
        by_user = is_ratelimited(
            request, group="staff-login:user", key="post:username", rate=rate, method="POST", increment=True
        )
    except Exception:
        logger.warning("staff sign-in not throttled: the rate-limit counters failed", exc_info=True)
        return False
    if by_ip or by_user:
        logger.warning(
            "staff sign-in throttled",
            extra={"username": request.POST.get("username", "")[:150], "ip": request.META.get("REMOTE_ADDR")},
        )
    return by_ip or by_user


def staff_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """``admin.site.login`` behind the throttle: a sign-in past the limit is a 429 page, not a password check."""
    if request.method == "POST" and _limited(request):
        return render(
            request,
            "access/login_throttled.html",
            {**admin.site.each_context(request), "title": "Too many sign-in attempts"},
            status=429,
        )
    return admin.site.login(request, extra_context)
