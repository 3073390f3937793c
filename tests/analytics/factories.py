"""A small fleet history for the analytics views: two cities, riders in every state, orders of today, of
yesterday and of last week, deliveries through the real path (events, earnings, COD), ratings, offers, duty
stretches and distances. Plus the views refreshed the way beat does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from analytics.models import MaterializedView
from analytics.services import view_refresh
from fleet.distance import local_day_bounds
from fleet.models import City
from orders.models import OfferStatus, Order, OrderEvent, OrderStatus
from riders.models import DutyEndReason, DutyStatus, KycStatus, Rider
from tests.fleet.factories import CityFactory, RiderDayDistanceFactory
from tests.orders.factories import (
    AcceptedOrderFactory,
    AssignedOrderFactory,
    DeliveredOrderFactory,
    OrderFactory,
    OrderOfferFactory,
)
from tests.riders.factories import DutyLogFactory, RatingFactory, RiderFactory
from tests.wallet.factories import deliver, earn, picked_up
from wallet.models import EntryType
from wallet.services import ledger_entry_post


def refresh_all() -> None:
    for view in MaterializedView:
        view_refresh(view=view)


def today_bounds() -> tuple[datetime, datetime]:
    return local_day_bounds(timezone.localdate())


def delivered_at(rider: Rider, at: datetime, *, created_at: datetime, **fields: object) -> Order:
    """An order the rider delivered at ``at``, with the DELIVERED event every delivery writes, both backdated."""
    order = DeliveredOrderFactory(rider=rider, city=rider.city, delivered_at=at, **fields)
    Order.objects.filter(pk=order.pk).update(created_at=created_at)
    event = OrderEvent.objects.create(
        order=order, from_status=OrderStatus.PICKED_UP, to_status=OrderStatus.DELIVERED, rider=rider
    )
    OrderEvent.objects.filter(pk=event.pk).update(occurred_at=at)
    order.refresh_from_db()
    return order


def _backdated_earning(rider: Rider, paise: int, at: datetime) -> None:
    """An earning posted ``at`` (the ledger refuses UPDATE, so it is inserted with its time)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO wallet_ledgerentry (rider_id, account, entry_type, amount_paise, idempotency_key, memo,"
            " created_at) VALUES (%s, 'WALLET', 'EARNING', %s, %s, '', %s)",
            [rider.pk, paise, f"old-earning:{rider.pk}:{at.isoformat()}", at],
        )


@dataclass
class World:
    city: City
    other_city: City
    riders: list[Rider]


def build_world() -> World:
    now = timezone.now()
    start, _ = today_bounds()
    city = CityFactory(code="ANA", name="Analytica")
    other = CityFactory(code="OTH", name="Otherton")
    approved = {"kyc_status": KycStatus.APPROVED, "kyc_reviewed_at": now}
    on_duty = RiderFactory(city=city, duty_status=DutyStatus.ON, duty_changed_at=now, **approved)
    off_duty = RiderFactory(city=city, **approved)
    pending = RiderFactory(city=city)  # KYC pending: not active
    suspended = RiderFactory(city=city, status="SUSPENDED", **approved)
    far = RiderFactory(city=other, duty_status=DutyStatus.ON, duty_changed_at=now, **approved)

    # Today: orders in every status, created today.
    OrderFactory(city=city)
    OrderFactory(city=city)
    AssignedOrderFactory(city=city, rider=off_duty)
    AcceptedOrderFactory(city=city, rider=on_duty)
    OrderFactory(city=city, status=OrderStatus.CANCELLED, closed_at=now, cancel_reason="partner")
    # Delivered today through the real path: event, earning and COD.
    for fee, cod in ((4_500, 25_000), (6_000, 0)):
        deliver(picked_up(on_duty, delivery_fee_paise=fee, cod_amount_paise=cod))
    deliver(picked_up(off_duty, delivery_fee_paise=9_000, cod_amount_paise=12_000))
    # Created yesterday, delivered today (counts for delivered today, not for orders today); delivered
    # yesterday (neither); delivered today in the other city.
    delivered_at(on_duty, start + timedelta(minutes=5), created_at=start - timedelta(hours=2))
    delivered_at(on_duty, start - timedelta(hours=1), created_at=start - timedelta(hours=3))
    deliver(picked_up(far, delivery_fee_paise=3_000, cod_amount_paise=50_000))
    # Last week: delivered 6 days ago (in the leaderboard's 7 days), 9 days ago (not), with an earning each.
    six_days = now - timedelta(days=6)
    nine_days = now - timedelta(days=9)
    delivered_at(off_duty, six_days, created_at=six_days - timedelta(minutes=30))
    delivered_at(off_duty, nine_days, created_at=nine_days - timedelta(minutes=70))
    _backdated_earning(off_duty, 7_000, six_days)
    _backdated_earning(off_duty, 99_000, nine_days)
    # An incentive, an earning reversed (less earnings), an adjustment reversed (no earning at all).
    earn(on_duty.pk, 2_000)
    reversed_earning = earn(suspended.pk, 8_000)
    ledger_entry_post(
        rider_id=suspended.pk,
        entry_type=EntryType.REVERSAL,
        amount_paise=-8_000,
        idempotency_key=f"reversal:{reversed_earning.pk}",
        reverses_id=reversed_earning.pk,
    )
    adjustment = ledger_entry_post(
        rider_id=pending.pk, entry_type=EntryType.ADJUSTMENT, amount_paise=5_000, idempotency_key="adjust:1"
    ).entry
    ledger_entry_post(
        rider_id=pending.pk,
        entry_type=EntryType.REVERSAL,
        amount_paise=-5_000,
        idempotency_key=f"reversal:{adjustment.pk}",
        reverses_id=adjustment.pk,
    )
    # Ratings: today's deliveries of on_duty rated 5 and 3; an old one of off_duty rated 1 nine days ago.
    delivered = list(Order.objects.filter(rider=on_duty, status=OrderStatus.DELIVERED).order_by("pk"))
    RatingFactory(order=delivered[0], stars=5)
    RatingFactory(order=delivered[1], stars=3)
    old_rating = RatingFactory(order=Order.objects.get(rider=off_duty, delivered_at=nine_days), stars=1)
    type(old_rating).objects.filter(pk=old_rating.pk).update(created_at=nine_days)
    # Failed and a slow (late) delivery for the performance summary.
    OrderFactory(
        city=city, rider=off_duty, status=OrderStatus.FAILED, closed_at=now, failure_reason="customer_unreachable"
    )
    delivered_at(off_duty, now - timedelta(hours=3), created_at=now - timedelta(hours=5))
    # Offers: on_duty accepted one, rejected one, let one expire; a pending and a withdrawn say nothing.
    for status in (OfferStatus.ACCEPTED, OfferStatus.REJECTED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN):
        OrderOfferFactory(order=AssignedOrderFactory(city=other, rider=far), rider=on_duty, status=status)
    OrderOfferFactory(order=AssignedOrderFactory(city=other, rider=far), rider=on_duty)
    # Duty: an open stretch of 2 h; one 8 to 6 days ago (half in the last 7 days); one 40 days ago.
    DutyLogFactory(rider=on_duty, started_at=now - timedelta(hours=2))
    DutyLogFactory(
        rider=off_duty,
        started_at=now - timedelta(days=8),
        ended_at=now - timedelta(days=6),
        end_reason=DutyEndReason.MANUAL,
    )
    DutyLogFactory(
        rider=off_duty,
        started_at=now - timedelta(days=40),
        ended_at=now - timedelta(days=40) + timedelta(hours=8),
        end_reason=DutyEndReason.MANUAL,
    )
    # Distances: today and yesterday.
    today = timezone.localdate()
    RiderDayDistanceFactory(rider=on_duty, day=today, distance_m=12_345)
    RiderDayDistanceFactory(rider=off_duty, day=today, distance_m=6_000)
    RiderDayDistanceFactory(rider=off_duty, day=today - timedelta(days=1), distance_m=50_000)
    RiderDayDistanceFactory(rider=far, day=today, distance_m=777)
    return World(city=city, other_city=other, riders=[on_duty, off_duty, pending, suspended, far])
