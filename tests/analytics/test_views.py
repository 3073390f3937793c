"""Each materialized view's figures equal the same aggregates computed by plain ORM queries on the tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone

from analytics.models import DashboardStats, RiderLeaderboard, RiderPerformanceSummary
from fleet.models import City, RiderDayDistance
from orders.models import OfferStatus, Order, OrderStatus
from riders.models import DutyLog, DutyStatus, KycStatus, Rating, Rider, RiderStatus
from tests.analytics.factories import build_world, refresh_all, today_bounds
from wallet.models import Account, EntryType, LedgerEntry
from wallet.selectors import rider_cod_held_paise

pytestmark = pytest.mark.django_db

EARNING_TYPES = (EntryType.EARNING, EntryType.INCENTIVE)


@pytest.fixture
def world():
    world = build_world()
    refresh_all()
    return world


def _expected_stats(city: City) -> dict:
    start, end = today_bounds()
    riders = Rider.objects.filter(city=city)
    created = Order.objects.filter(city=city, created_at__gte=start, created_at__lt=end)
    by_status = dict(created.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    delivered = Order.objects.filter(
        city=city, status=OrderStatus.DELIVERED, delivered_at__gte=start, delivered_at__lt=end
    ).aggregate(n=Count("id"), mean=Avg(F("delivered_at") - F("created_at")))
    distance = RiderDayDistance.objects.filter(rider__city=city, day=timezone.localdate()).aggregate(
        m=Sum("distance_m")
    )
    return {
        "day": timezone.localdate(),
        "active_riders": riders.filter(status=RiderStatus.ACTIVE, kyc_status=KycStatus.APPROVED).count(),
        "on_duty_riders": riders.filter(duty_status=DutyStatus.ON).count(),
        "orders_today": created.count(),
        **{f"orders_{status.lower()}": by_status.get(status, 0) for status in OrderStatus.values},
        "delivered_today": delivered["n"],
        "average_delivery_s": delivered["mean"].total_seconds() if delivered["mean"] else None,
        "distance_today_m": distance["m"] or 0,
        "cod_outstanding_paise": sum(rider_cod_held_paise(rider_id=rider.pk) for rider in riders),
    }


def test_dashboard_stats_equal_plain_queries_per_city(world):
    for city in (world.city, world.other_city):
        row = DashboardStats.objects.get(city=city)
        expected = _expected_stats(city)
        actual = {field: getattr(row, field) for field in expected}
        assert actual.pop("average_delivery_s") == pytest.approx(expected.pop("average_delivery_s"))
        assert actual == expected, city.code
        assert row.city_code == city.code


def test_dashboard_stats_fixture_covers_every_kind_of_figure(world):
    """The fixture is not all zeros: each figure of the city is non-trivial, so the equality above means something."""
    row = DashboardStats.objects.get(city=world.city)
    assert row.active_riders == 2  # the pending and the suspended rider are not active
    assert row.on_duty_riders == 1
    # Which of the backdated orders fall on today depends on the hour the test runs (portal time).
    assert (row.orders_created, row.orders_assigned, row.orders_cancelled) == (2, 1, 1)
    assert row.orders_today >= 9
    assert row.delivered_today >= 4  # 3 created today and 1 created yesterday, at least
    assert row.distance_today_m == 18_345
    assert row.cod_outstanding_paise == 37_000


def _expected_leaderboard(city: City) -> list[dict]:
    since = timezone.now() - timedelta(days=7)
    rows = []
    for rider in Rider.objects.filter(city=city):
        entries = LedgerEntry.objects.filter(rider=rider, account=Account.WALLET, created_at__gte=since)
        earnings = entries.filter(entry_type__in=EARNING_TYPES).aggregate(s=Sum("amount_paise"))["s"] or 0
        reversed_ids = LedgerEntry.objects.filter(rider=rider, entry_type__in=EARNING_TYPES).values("id")
        earnings += (
            entries.filter(entry_type=EntryType.REVERSAL, reverses_id__in=reversed_ids).aggregate(
                s=Sum("amount_paise")
            )["s"]
            or 0
        )
        completed = Order.objects.filter(rider=rider, status=OrderStatus.DELIVERED, delivered_at__gte=since).count()
        ratings = Rating.objects.filter(rider=rider, created_at__gte=since).aggregate(avg=Avg("stars"), n=Count("id"))
        has_earning = entries.filter(
            Q(entry_type__in=EARNING_TYPES) | Q(entry_type=EntryType.REVERSAL, reverses_id__in=reversed_ids)
        ).exists()
        if has_earning or completed:
            rows.append(
                {
                    "rider_id": rider.pk,
                    "earnings_paise": earnings,
                    "completed_orders": completed,
                    "average_rating": ratings["avg"],
                    "ratings": ratings["n"],
                }
            )
    for row in rows:
        row["rank"] = 1 + sum(
            (other["earnings_paise"], other["completed_orders"]) > (row["earnings_paise"], row["completed_orders"])
            for other in rows
        )
    return sorted(rows, key=lambda row: (row["rank"], row["rider_id"]))


def test_leaderboard_equals_plain_queries_per_city(world):
    for city in (world.city, world.other_city):
        actual = list(
            RiderLeaderboard.objects.filter(city=city)
            .order_by("rank", "rider_id")
            .values("rider_id", "earnings_paise", "completed_orders", "average_rating", "ratings", "rank")
        )
        assert actual == _expected_leaderboard(city), city.code


def test_leaderboard_counts_the_last_7_days_and_earnings_net_of_their_reversals(world):
    on_duty, off_duty, pending, suspended, _ = world.riders
    board = {row.rider_id: row for row in RiderLeaderboard.objects.filter(city=world.city)}
    assert board[on_duty.pk].earnings_paise == 4_500 + 6_000 + 2_000
    assert board[off_duty.pk].earnings_paise == 9_000 + 7_000  # not the 99,000 of 9 days ago
    assert board[off_duty.pk].completed_orders == 3  # today, 6 days ago, the late one; not 9 days ago
    assert board[suspended.pk].earnings_paise == 0  # earned, then reversed
    assert pending.pk not in board  # an adjustment is no earning
    assert (board[on_duty.pk].rank, board[off_duty.pk].rank) == (2, 1)


def test_rider_performance_summary_equals_plain_queries(world):
    now = timezone.now()
    on_time = timedelta(minutes=settings.ANALYTICS_ON_TIME_MINUTES)
    for rider in Rider.objects.all():
        orders = Order.objects.filter(rider=rider)
        delivered = orders.filter(status=OrderStatus.DELIVERED)
        offers = rider.order_offers.all()
        decided = offers.filter(status__in=[OfferStatus.ACCEPTED, OfferStatus.REJECTED, OfferStatus.EXPIRED]).count()
        ratings = Rating.objects.filter(rider=rider).aggregate(avg=Avg("stars"), n=Count("id"))

        def duty_s(days: int, rider: Rider = rider) -> int:
            since = now - timedelta(days=days)
            total = 0.0
            for log in DutyLog.objects.filter(rider=rider):
                end = log.ended_at or now
                if end > since:
                    total += (end - max(log.started_at, since)).total_seconds()
            return round(total)

        row = RiderPerformanceSummary.objects.get(rider=rider)
        on_time_count = sum(1 for o in delivered if o.delivered_at - o.created_at <= on_time)
        assert (row.total_orders, row.completed_orders, row.cancelled_orders, row.failed_orders) == (
            orders.count(),
            delivered.count(),
            orders.filter(status=OrderStatus.CANCELLED).count(),
            orders.filter(status=OrderStatus.FAILED).count(),
        )
        assert row.acceptance_rate == (
            pytest.approx(offers.filter(status=OfferStatus.ACCEPTED).count() / decided) if decided else None
        )
        assert row.on_time_rate == (pytest.approx(on_time_count / delivered.count()) if delivered.count() else None)
        assert (row.average_rating, row.ratings) == (
            pytest.approx(ratings["avg"]) if ratings["avg"] else None,
            ratings["n"],
        )
        # The view's "now" is the refresh's, a moment before this one: an open stretch grew since.
        assert row.on_duty_s_7d == pytest.approx(duty_s(7), abs=5)
        assert row.on_duty_s_30d == pytest.approx(duty_s(30), abs=5)


def test_rider_performance_fixture_covers_every_rate(world):
    on_duty, off_duty, *_ = world.riders
    row = RiderPerformanceSummary.objects.get(rider=on_duty)
    assert row.acceptance_rate == pytest.approx(1 / 3)
    assert row.on_duty_s_7d == pytest.approx(2 * 3600, abs=5)
    late = RiderPerformanceSummary.objects.get(rider=off_duty)
    # Late: the 70-minute and the 2-hour deliveries.
    assert (late.failed_orders, late.on_time_rate) == (1, pytest.approx(2 / 4))
    assert late.on_duty_s_7d == pytest.approx(24 * 3600, abs=5)
    assert late.on_duty_s_30d == pytest.approx(48 * 3600, abs=5)
