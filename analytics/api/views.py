"""Analytics API for staff and partners: a city's KPIs and its rider leaderboard, read from the materialized
views through Redis (``X-Cache``). Thin: the selectors read and cache.

Dashboards poll these, so a cached read is kept cheap: the caller's token comes from the token cache
(``access.token_cache``) and the stats are cached as their rendered JSON body, answered as stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.serializers import CityCodeParam, DashboardStatsOut, LeaderboardOut
from analytics.cache import Cached
from config.api.schema import x_cache_header
from config.api.views import ApiView, IsStaffOrPartner, validated_query

X_CACHE = x_cache_header("HIT when the figures came from Redis; MISS when they were read from the materialized view.")


def _city_checked(read: Callable[[], Cached]) -> Cached:
    """``read()``, with an unknown city reported on the parameter like any other invalid input."""
    try:
        return read()
    except selectors.UnknownCity as error:
        raise serializers.ValidationError({"city": [error.message]}) from error


def _x_cache(cached: Cached) -> dict[str, str]:
    return {"X-Cache": "HIT" if cached.hit else "MISS"}


def _stats_json(row: dict[str, Any]) -> bytes:
    return JSONRenderer().render(DashboardStatsOut(row).data)


def _rendered(request: Request, cached: Cached) -> HttpResponseBase:
    """The cached JSON body as stored (what DRF would have rendered); rendered again only for a client that
    asks for indentation (``Accept: application/json; indent=4``)."""
    if JSONRenderer().get_indent(request.accepted_media_type, {}) is not None:
        return Response(json.loads(cached.value), headers=_x_cache(cached))
    return HttpResponse(cached.value, content_type=JSONRenderer.media_type, headers=_x_cache(cached))


class _CachedReadApi(ApiView):
    """A read of a materialized view through Redis, polled by dashboards."""

    token_cache = True  # the caller's token from the token cache
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"
    error_statuses = (400,)  # an unknown city or a bad limit


class DashboardStatsApi(_CachedReadApi):
    class Params(serializers.Serializer):
        city = CityCodeParam()

    @extend_schema(
        parameters=[Params, X_CACHE],
        responses={200: DashboardStatsOut},
        summary="A city's KPIs: riders, today's orders and deliveries, distance, COD outstanding",
        description="From the `analytics_dashboard_stats` materialized view, refreshed every minute, through Redis "
        "until the next refresh (`X-Cache`). 'Today' is the portal's local day. A city added since the last "
        "refresh answers zeros with `refreshed_at` null.",
    )
    def get(self, request: Request) -> HttpResponseBase:
        params = validated_query(self.Params, request)
        read = partial(selectors.dashboard_stats_rendered, city_code=params["city"], render=_stats_json)
        return _rendered(request, _city_checked(read))


class LeaderboardApi(_CachedReadApi):
    class Params(serializers.Serializer):
        city = CityCodeParam()
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.LEADERBOARD_MAX, default=10, help_text="How many riders, best first."
        )

    @extend_schema(
        parameters=[Params, X_CACHE],
        responses={200: LeaderboardOut},
        summary="A city's riders ranked by earnings over the last 7 days",
        description="From the `analytics_rider_leaderboard` materialized view, refreshed hourly, through Redis until "
        "the next refresh (`X-Cache`). Riders who neither earned nor delivered in the period are not listed.",
    )
    def get(self, request: Request) -> Response:
        params = validated_query(self.Params, request)
        cached = _city_checked(partial(selectors.leaderboard_read, city_code=params["city"], limit=params["limit"]))
        return Response(LeaderboardOut(cached.value).data, headers=_x_cache(cached))
