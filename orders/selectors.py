"""Order reads: the partner's lists and details, the rider's orders, and the trip's track.

Every selector takes ``created_by_id``: None reads every order (staff), a user id only the orders that user
created (a partner). An order outside the caller's scope is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from fleet.geo import LatLon, haversine_m
from fleet.models import LocationLog
from orders.models import ACTIVE_STATUSES, OfferStatus, Order, OrderEvent, OrderOffer
from riders.models import Rating

#: The most points a track answers with. At one point every 10 s that is a trip of over 27 hours; a longer
#: one (an order left PICKED_UP for days) answers its first points and says ``truncated``.
TRACK_MAX_POINTS = 10_000


def _scoped(queryset: QuerySet[Order], created_by_id: int | None) -> QuerySet[Order]:
    return queryset if created_by_id is None else queryset.filter(created_by_id=created_by_id)


def order_list(
    *,
    created_by_id: int | None,
    status: str | None = None,
    city_code: str | None = None,
    rider_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Order]:
    """Orders in the caller's scope, filtered; city and rider joined (one query a page)."""
    orders = _scoped(Order.objects.select_related("city", "rider"), created_by_id)
    if status is not None:
        orders = orders.filter(status=status)
    if city_code is not None:
        orders = orders.filter(city__code=city_code)
    if rider_id is not None:
        orders = orders.filter(rider_id=rider_id)
    if created_after is not None:
        orders = orders.filter(created_at__gte=created_after)
    if created_before is not None:
        orders = orders.filter(created_at__lt=created_before)
    return orders


def rider_active_order_count() -> Coalesce:
    """For ``Rider.objects.annotate(...)``: how many active orders (offered, accepted, picked up) the rider
    carries, 0 when none; one grouped subquery per rider."""
    active = (
        Order.objects.filter(rider_id=OuterRef("pk"), status__in=ACTIVE_STATUSES)
        .order_by()
        .values("rider_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(active, output_field=IntegerField()), 0)


def order_exists(*, order_id: int, created_by_id: int | None) -> bool:
    """Whether the order exists in the caller's scope (checked before a partner may act on it)."""
    return _scoped(Order.objects.filter(pk=order_id), created_by_id).exists()


def order_detail(*, order_id: int, created_by_id: int | None) -> Order | None:
    """One order with what its page shows: city, rider and rating joined; the event history (actor and rider
    joined) and the offers (rider joined) prefetched. Three queries."""
    events = OrderEvent.objects.select_related("actor", "rider").order_by("occurred_at", "id")
    offers = OrderOffer.objects.select_related("rider").order_by("offered_at", "id")
    return (
        _scoped(Order.objects.select_related("city", "rider", "rating"), created_by_id)
        .prefetch_related(Prefetch("events", queryset=events), Prefetch("offers", queryset=offers))
        .filter(pk=order_id)
        .first()
    )


def order_detail_of_new(*, order: Order, event: OrderEvent, actor: Any) -> Order:
    """``order_detail``'s answer for an order just created, without reading it back: it has its city (the
    intake loaded it), no rider, rating or offer yet, and one event, the CREATED one ``actor`` wrote. Read back,
    this was 40% of an order push's CPU (``bench/intake_profile.py``); the API tests compare it with a read."""
    event.actor = actor
    # What prefetch_related("events", "offers") would have set:
    order._prefetched_objects_cache = {"events": [event], "offers": []}  # type: ignore[attr-defined]
    Order.rating.related.set_cached_value(order, None)  # no rating: answered without a query
    return order


def order_rating(*, order_id: int) -> Rating | None:
    """The order's rating (one per order), read through the order; None before it is rated."""
    order = Order.objects.select_related("rating").filter(pk=order_id).first()
    return getattr(order, "rating", None)  # the reverse one-to-one raises (an AttributeError) when unrated


def _with_pending_offer(orders: QuerySet[Order], rider_id: int) -> QuerySet[Order]:
    """``order.pending_offers``: the rider's offer still waiting for an answer, if any (its deadline)."""
    pending = OrderOffer.objects.filter(rider_id=rider_id, status=OfferStatus.PENDING)
    return orders.prefetch_related(Prefetch("offers", queryset=pending, to_attr="pending_offers"))


def rider_orders_active(*, rider_id: int) -> QuerySet[Order]:
    """The rider's orders offered (ASSIGNED), accepted or picked up; two queries a page."""
    orders = Order.objects.select_related("city").filter(rider_id=rider_id, status__in=ACTIVE_STATUSES)
    return _with_pending_offer(orders, rider_id)


def rider_order(*, order_id: int, rider_id: int) -> Order | None:
    """One order of the rider's, in any status; None when it is not (or no longer) the rider's."""
    orders = Order.objects.select_related("city").filter(pk=order_id, rider_id=rider_id)
    return _with_pending_offer(orders, rider_id).first()


@dataclass(frozen=True)
class TrackPoint:
    lat: float
    lon: float
    recorded_at: datetime


@dataclass(frozen=True)
class OrderTrack:
    """The trip of an order: the rider's points from pickup to delivery (or to now while it is under way)."""

    order: Order
    started_at: datetime | None
    ended_at: datetime | None
    points: list[TrackPoint]
    distance_m: int
    truncated: bool


def order_track(*, order_id: int, created_by_id: int | None, now: datetime | None = None) -> OrderTrack | None:
    """The order's trip; None when the order is not in the caller's scope.

    The points are the carrying rider's, recorded between ``picked_up_at`` and ``delivered_at`` (a failed
    trip: ``closed_at``; a trip under way: now), oldest first, read in one query bounded by time on both
    sides so PostgreSQL prunes the location log to the trip's monthly partitions. An order never picked up
    has no trip: no points. The distance is the great-circle length of the line through the points.
    """
    order = _scoped(Order.objects.select_related("city"), created_by_id).filter(pk=order_id).first()
    if order is None:
        return None
    started_at = order.picked_up_at
    if started_at is None or order.rider_id is None:
        return OrderTrack(order=order, started_at=None, ended_at=None, points=[], distance_m=0, truncated=False)
    ended_at = order.delivered_at or order.closed_at
    until = ended_at or (now or timezone.now())
    # The location log belongs to fleet; it is read here, once per trip, for its primary key
    # (rider_id, recorded_at) and the partition bounds: fleet.selectors has no time-window read yet.
    rows: Any = (
        LocationLog.objects.filter(rider_id=order.rider_id, recorded_at__gte=started_at, recorded_at__lte=until)
        .order_by("recorded_at")
        .values_list("lat", "lon", "recorded_at")[: TRACK_MAX_POINTS + 1]
    )
    points = [TrackPoint(lat=lat, lon=lon, recorded_at=at) for lat, lon, at in rows]
    truncated = len(points) > TRACK_MAX_POINTS
    points = points[:TRACK_MAX_POINTS]
    return OrderTrack(
        order=order,
        started_at=started_at,
        ended_at=ended_at,
        points=points,
        distance_m=round(track_length_m(points)),
        truncated=truncated,
    )


def track_length_m(points: list[TrackPoint]) -> float:
    """Great-circle length of the line through the points, in order."""
    return sum(haversine_m(LatLon(a.lat, a.lon), LatLon(b.lat, b.lon)) for a, b in pairwise(points))
