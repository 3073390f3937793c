"""Analytics reads: the materialized views through the cache (``analytics.cache``), as plain data.

For other apps: ``dashboard_stats(city_code)`` is the KPI strip of a city (the dispatch dashboard reads it).
Every read is one Redis round trip when cached, else one indexed query on a view; Redis down, the view answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analytics.cache import Cached, view_cached
from analytics.models import DashboardStats, MaterializedView, RiderLeaderboard, RiderPerformanceSummary
from config.errors import BadRequest
from fleet import selectors as fleet_selectors


class UnknownCity(BadRequest):
    code = "unknown_city"


def _ensure_city(city_code: str) -> None:
    """Asked only when a view has no row for the code, so a cached read costs no city lookup."""
    if fleet_selectors.city_active(code=city_code) is None:
        raise UnknownCity("No active city has this code.")


STATS_FIELDS = (
    "city_code",
    "day",
    "active_riders",
    "on_duty_riders",
    "orders_today",
    "orders_created",
    "orders_assigned",
    "orders_accepted",
    "orders_picked_up",
    "orders_delivered",
    "orders_cancelled",
    "orders_failed",
    "delivered_today",
    "average_delivery_s",
    "distance_today_m",
    "cod_outstanding_paise",
    "refreshed_at",
)

#: The longest leaderboard served; one cached list per city, sliced to the caller's limit.
LEADERBOARD_MAX = 100
LEADERBOARD_FIELDS = (
    "rank",
    "rider_id",
    "rider_name",
    "earnings_paise",
    "completed_orders",
    "average_rating",
    "ratings",
)

PERFORMANCE_FIELDS = (
    "rider_id",
    "city_id",
    "total_orders",
    "completed_orders",
    "cancelled_orders",
    "failed_orders",
    "acceptance_rate",
    "on_time_rate",
    "average_rating",
    "ratings",
    "on_duty_s_7d",
    "on_duty_s_30d",
    "refreshed_at",
)


def _stats_empty(city_code: str) -> dict[str, Any]:
    """A city the view has no row for yet (added since the last refresh): zeros, and no ``refreshed_at``."""
    empty: dict[str, Any] = dict.fromkeys(STATS_FIELDS, 0)
    empty.update(city_code=city_code, day=None, average_delivery_s=None, refreshed_at=None)
    return empty


def _stats_load(city_code: str) -> dict[str, Any]:
    row = DashboardStats.objects.filter(city_code=city_code).values(*STATS_FIELDS).first()
    if row is None:
        _ensure_city(city_code)
        return _stats_empty(city_code)
    return row


def dashboard_stats_read(*, city_code: str) -> Cached:
    """The city's row of ``analytics_dashboard_stats`` (``city_code`` as stored: upper case), cached until the
    next refresh; ``hit`` says whether Redis had it. ``UnknownCity`` for a code no active city has (a code is
    only ever cached after its row was found, so a hit needs no city lookup)."""
    return view_cached(MaterializedView.DASHBOARD_STATS, city_code, lambda: _stats_load(city_code))


def dashboard_stats_rendered(*, city_code: str, render: Callable[[dict[str, Any]], bytes]) -> Cached:
    """``render`` of the city's stats (the API's JSON body), cached as bytes next to ``dashboard_stats_read``'s
    row under the same generation: a hit returns the stored bytes with nothing to serialize. ``UnknownCity``
    as there."""
    return view_cached(
        MaterializedView.DASHBOARD_STATS, f"{city_code}:rendered", lambda: render(_stats_load(city_code))
    )


def dashboard_stats(city_code: str) -> dict[str, Any]:
    """The KPIs of a city as of the last refresh (every minute): riders active and on duty, orders created today
    by their status now, delivered today, average delivery time, distance today, COD outstanding.

    Keys: ``STATS_FIELDS``. Amounts in paise, distance in metres, durations in seconds; ``refreshed_at`` is None
    (and every figure 0) for a city created since the last refresh.
    """
    return dict(dashboard_stats_read(city_code=city_code.upper()).value)


def _leaderboard_load(city_code: str) -> dict[str, Any]:
    rows = RiderLeaderboard.objects.filter(city__code=city_code).order_by("rank", "rider_id")[:LEADERBOARD_MAX]
    riders = list(rows.values(*LEADERBOARD_FIELDS, "period_starts_at", "refreshed_at"))
    if not riders:
        _ensure_city(city_code)
    first = riders[0] if riders else {}
    return {
        "city_code": city_code,
        "period_starts_at": first.get("period_starts_at"),
        "refreshed_at": first.get("refreshed_at"),
        "riders": [{field: rider[field] for field in LEADERBOARD_FIELDS} for rider in riders],
    }


def leaderboard_read(*, city_code: str, limit: int) -> Cached:
    """The city's top ``limit`` riders (at most ``LEADERBOARD_MAX``) by earnings over the last 7 days, best
    first (ties share a rank, then by rider id), cached until the next hourly refresh. ``UnknownCity`` as in
    ``dashboard_stats_read``."""
    cached = view_cached(MaterializedView.RIDER_LEADERBOARD, city_code, lambda: _leaderboard_load(city_code))
    board = dict(cached.value)
    board["riders"] = board["riders"][: min(limit, LEADERBOARD_MAX)]
    return Cached(value=board, hit=cached.hit)


def rider_performance(*, rider_id: int) -> dict[str, Any] | None:
    """The rider's row of ``analytics_rider_performance_summary`` (``PERFORMANCE_FIELDS``), or None for a rider
    created since the last refresh (every six hours); cached until the next one."""

    def load() -> dict[str, Any] | None:
        return RiderPerformanceSummary.objects.filter(rider_id=rider_id).values(*PERFORMANCE_FIELDS).first()

    return view_cached(MaterializedView.RIDER_PERFORMANCE_SUMMARY, str(rider_id), load).value
