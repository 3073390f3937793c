"""The dispatcher dashboard (staff), its JSON state for re-syncs, its actions, and the public tracking page.

Thin: reads go through ``dispatch.selectors``, writes through the orders and riders services. An action is a
plain POST form (CSRF) that redirects back to the dashboard with a message; the page's script sends the same
forms with ``Accept: application/json`` and gets ``{"ok", "message"}`` instead. A refused action (an illegal
transition, a rider who may not take the order, an alert already taken) is a message, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from redis.exceptions import RedisError

from config.errors import BadRequest, Conflict, DomainError, NotFound, PayloadTooLarge, RuleViolation
from dispatch import selectors
from dispatch.forms import AssignForm, CancelForm, form_error_text
from dispatch.tracking import order_id_from_token
from orders import assignment
from orders import services as order_services
from riders import services as rider_services

logger = logging.getLogger(__name__)

_STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (BadRequest, 400),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (RuleViolation, 422),
)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _dashboard_url(city_code: str | None) -> str:
    url = reverse("dispatch:dashboard")
    return f"{url}?{urlencode({'city': city_code})}" if city_code else url


def _answer(request: HttpRequest, *, ok: bool, message: str, status: int = 200) -> HttpResponse:
    """An action's outcome: JSON for the page's script, else a message and a redirect to the dashboard."""
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": message}, status=status)
    (messages.success if ok else messages.error)(request, message)
    return HttpResponseRedirect(_dashboard_url(request.POST.get("city") or None))


def _refused(request: HttpRequest, error: Exception) -> HttpResponse:
    if isinstance(error, DomainError):
        status = next((code for kind, code in _STATUS_OF if isinstance(error, kind)), 400)
        return _answer(request, ok=False, message=error.message, status=status)
    # Redis unreachable (automatic assignment reads the live GEO set): the dispatcher can retry.
    logger.warning("dispatch action failed: %r", error)
    return _answer(request, ok=False, message="The live rider state is unreachable; try again.", status=503)


def _staff_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For the JSON state: 403 in JSON for anyone but active staff (no redirect to a login page)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return JsonResponse({"error": {"code": "permission_denied", "message": "Staff only."}}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _tile_source() -> str:
    """The CSP source of the map's tiles: ``DISPATCH_TILE_URL``'s origin, ``{s}.`` subdomains as a wildcard."""
    url = settings.DISPATCH_TILE_URL
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}.", "wildcard-subdomain."))
    return f"{parts.scheme}://{parts.netloc}".replace("wildcard-subdomain.", "*.")


def _content_security_policy(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The pages' Content-Security-Policy: scripts, styles, sockets and fetches from this origin only; images
    from here and the tile server; no framing, plugins or foreign form targets. The pages run no inline
    script (data reaches the scripts through ``json_script``); Leaflet positions its panes with inline styles,
    which cannot run code, so styles allow them."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self' 'unsafe-inline'",
                f"img-src 'self' data: {_tile_source()}".strip(),
                "connect-src 'self'",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )
        return response

    return wrapped


@require_GET
@staff_member_required
@_content_security_policy
def dashboard(request: HttpRequest) -> HttpResponse:
    """The live dashboard of one city (``?city=CODE``, the first active city by default), server-rendered."""
    cities = selectors.cities_active()
    city = selectors.dashboard_city(code=request.GET.get("city"), cities=cities)
    if city is None and request.GET.get("city"):
        raise Http404("No such active city.")
    state = selectors.dashboard_state(city=city) if city is not None else None
    config = {
        "city": city.code if city is not None else None,
        "ws_path": f"/ws/dispatch/{city.code}/" if city is not None else None,
        "state_url": reverse("dispatch:state") + (f"?{urlencode({'city': city.code})}" if city is not None else ""),
        "tile_url": settings.DISPATCH_TILE_URL,
        "tile_attribution": settings.DISPATCH_TILE_ATTRIBUTION,
        "stale_after_s": settings.RIDER_STALE_AFTER_S,
    }
    return render(
        request,
        "dispatch/dashboard.html",
        {"cities": cities, "city": city, "state": state, "config": config},
    )


@require_GET
@_staff_json
def state(request: HttpRequest) -> HttpResponse:
    """The dashboard's whole state as JSON (the page's script re-syncs from it after a reconnect)."""
    cities = selectors.cities_active()
    city = selectors.dashboard_city(code=request.GET.get("city"), cities=cities)
    if city is None:
        return JsonResponse({"error": {"code": "not_found", "message": "No such active city."}}, status=404)
    return JsonResponse(selectors.dashboard_state(city=city))


@require_POST
@staff_member_required
def order_assign(request: HttpRequest, order_id: int) -> HttpResponse:
    """Assign the order to the picked rider; from ASSIGNED or ACCEPTED it is a reassignment."""
    form = AssignForm(request.POST)
    if not form.is_valid():
        return _answer(request, ok=False, message=form_error_text(form), status=400)
    try:
        result = assignment.order_assign(order_id=order_id, actor=request.user, rider_id=form.cleaned_data["rider_id"])
    except (DomainError, RedisError) as error:
        return _refused(request, error)
    order = result.order
    return _answer(request, ok=True, message=f"Order {order.external_ref} offered to {result.offer.rider.name}.")


@require_POST
@staff_member_required
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _answer(request, ok=False, message=form_error_text(form), status=400)
    try:
        order = order_services.order_cancel(order_id=order_id, actor=request.user, reason=form.cleaned_data["reason"])
    except DomainError as error:
        return _refused(request, error)
    return _answer(request, ok=True, message=f"Order {order.external_ref} cancelled.")


@require_POST
@staff_member_required
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = rider_services.emergency_alert_acknowledge(alert_id=alert_id, user=request.user)
    except DomainError as error:
        return _refused(request, error)
    return _answer(request, ok=True, message=f"SOS #{alert.pk} acknowledged.")


@require_GET
@_content_security_policy
def track(request: HttpRequest, token: str) -> HttpResponse:
    """The public tracking page of one order: only that trip. A token no order has is a 404."""
    order_id = order_id_from_token(token)
    trip = selectors.trip_public(order_id=order_id) if order_id is not None else None
    if trip is None:
        raise Http404("No such tracking link.")
    config = {
        "ws_path": f"/ws/orders/{trip['order_id']}/track/?{urlencode({'token': token})}",
        "tile_url": settings.DISPATCH_TILE_URL,
        "tile_attribution": settings.DISPATCH_TILE_ATTRIBUTION,
    }
    response = render(request, "dispatch/track.html", {"trip": trip, "config": config})
    response["Referrer-Policy"] = "no-referrer"  # the token is the credential: keep it out of Referer headers
    return response
