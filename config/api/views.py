"""The base of every API view: authentication, rate limits, idempotency and the error shape in one place."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.idempotency import Claim, claim_or_replay


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class ApiView(APIView):
    """Set ``idempotent_post = True`` on views whose POST creates something: ``Idempotency-Key`` then works.

    ``ratelimit_scope`` picks the rate from ``settings.API_RATE_LIMITS`` (default: per token for
    authenticated callers, per IP for anonymous ones). ``error_statuses`` lists the business errors
    (409, 413, 415, 422, ...) the OpenAPI schema documents for the view on top of the automatic ones.
    """

    idempotent_post = False
    ratelimit_scope: str | None = None
    error_statuses: tuple[int, ...] = ()
    _idempotency: Claim | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and self.idempotent_post:
            outcome = claim_or_replay(request)
            if isinstance(outcome, Response):
                raise _Replay(outcome)
            self._idempotency = outcome

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except Exception:
            if self._idempotency is not None:  # an unhandled error: let the client retry with the key
                cache.delete(self._idempotency.cache_key)
                self._idempotency = None
            raise

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._idempotency is not None:
            self._idempotency.finish(response)
            self._idempotency = None
        return response


def validated(serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any) -> dict[str, Any]:
    """The request body validated by ``serializer_class``; a 400 in the error shape otherwise."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def validated_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The query string validated by ``serializer_class``; a 400 in the error shape otherwise."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class IsStaff(BasePermission):
    message = "Only staff accounts may call this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


def is_partner(user: Any) -> bool:
    """A member of the auth group named by ``settings.PARTNER_GROUP``; asked once per request (kept on the user)."""
    known = getattr(user, "_fleetops_is_partner", None)
    if known is None:
        known = bool(user.is_authenticated and user.groups.filter(name=settings.PARTNER_GROUP).exists())
        user._fleetops_is_partner = known
    return known


class IsStaffOrPartner(BasePermission):
    """Staff, or a partner account (``is_partner``). Partners act only on what they created; the views scope
    their queries with ``partner_scope``."""

    message = "Only staff accounts may call this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return bool(user.is_staff) or is_partner(user)


def partner_scope(request: Request) -> int | None:
    """Whose records the caller sees: None for staff (everyone's), else the caller's own user id."""
    user = request.user
    return None if user.is_staff else user.pk
