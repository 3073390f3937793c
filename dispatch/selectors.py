"""The dispatcher dashboard's reads: everything ``/dispatch/`` shows for one city, in a fixed number of queries.

``dashboard_state`` is the page's whole state as JSON-ready data: the page renders it (and hands it to the
browser through ``json_script``), and ``/dispatch/state/`` answers it to a browser that reconnects and re-syncs.
Every list is bounded (``*_LIMIT``; one row more is read to say that there are more), and every relation a
row shows is joined or computed in the list's own query, so the page costs the same queries whatever the
city's size (``tests/dispatch/test_page.py`` holds that).

The riders' last positions and the trips' trails are read from the location log here, as subqueries of the
riders' and trips' own queries (fleet's selectors read one rider at a time, which would be one query a row).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import JSONObject
from django.urls import reverse
from django.utils import timezone

from fleet import selectors as fleet_selectors
from fleet.models import City, LocationLog
from orders import selectors as order_selectors
from orders.models import ACTIVE_STATUSES, Order, OrderStatus
from riders import selectors as rider_selectors
from riders.models import AlertStatus, DutyStatus, EmergencyAlert, Rider, RiderStatus

UNASSIGNED_LIMIT = 100
TRIPS_LIMIT = 200
RIDERS_LIMIT = 500
ALERTS_LIMIT = 50
#: A trip's trail: the rider's newest points of the last ``TRAIL_WINDOW``, at most ``TRAIL_POINTS`` of them.
TRAIL_POINTS = 60
TRAIL_WINDOW = timedelta(minutes=30)
#: How far back a rider's last point is looked for; an on-duty rider silent for longer has no marker.
POSITION_WINDOW = timedelta(hours=24)
#: Ingest accepts points up to 2 minutes ahead of the clock; reads are bounded there so partitions prune.
_CLOCK_SKEW = timedelta(minutes=2)


def cities_active() -> list[City]:
    """The cities a dispatcher can pick, by name."""
    return list(City.objects.filter(is_active=True).order_by("name"))


def dashboard_city(*, code: str | None, cities: list[City]) -> City | None:
    """The city of ``?city=`` among ``cities`` (any case); the first one when no code is given; None for an
    unknown code or when there is no active city."""
    if not code:
        return cities[0] if cities else None
    return next((city for city in cities if city.code == code.upper()), None)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _age_s(at: datetime | None, now: datetime) -> int | None:
    return max(0, int((now - at).total_seconds())) if at is not None else None


def _place(lat: float, lon: float, address: str) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "address": address}


def orders_unassigned(*, city: City, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """The city's orders waiting for a rider (CREATED): flagged ones first (automatic assignment gave up on
    them), then oldest first. One query; the bool says there are more than ``UNASSIGNED_LIMIT``."""
    rows = list(
        Order.objects.filter(city=city, status=OrderStatus.CREATED)
        .order_by("-is_flagged", "created_at", "pk")
        .only(
            "pk", "external_ref", "status", "is_flagged", "created_at", "updated_at", "cod_amount_paise",
            "pickup_lat", "pickup_lon", "pickup_address", "drop_lat", "drop_lon", "drop_address",
        )[: UNASSIGNED_LIMIT + 1]
    )  # fmt: skip
    orders = [
        {
            "order_id": order.pk,
            "external_ref": order.external_ref,
            "status": order.status,
            "is_flagged": order.is_flagged,
            "cod_amount_paise": order.cod_amount_paise,
            "created_at": _iso(order.created_at),
            "updated_at": _iso(order.updated_at),
            "age_s": _age_s(order.created_at, now),
            "pickup": _place(order.pickup_lat, order.pickup_lon, order.pickup_address),
            "drop": _place(order.drop_lat, order.drop_lon, order.drop_address),
        }
        for order in rows[:UNASSIGNED_LIMIT]
    ]
    return orders, len(rows) > UNASSIGNED_LIMIT


def _trail(now: datetime) -> ArraySubquery:
    """The newest points of the outer order's rider (``OuterRef("rider_id")``), newest first, as ``[lat, lon]``
    pairs: an index range scan of the location log's primary key ``(rider_id, recorded_at)`` per trip."""
    points = (
        LocationLog.objects.filter(
            rider_id=OuterRef("rider_id"), recorded_at__gte=now - TRAIL_WINDOW, recorded_at__lte=now + _CLOCK_SKEW
        )
        .order_by("-recorded_at")
        .values(point=JSONObject(lat="lat", lon="lon"))[:TRAIL_POINTS]
    )
    return ArraySubquery(points)


def trips_active(*, city: City, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """The city's orders with a rider and not finished (ASSIGNED, ACCEPTED, PICKED_UP), oldest assignment
    first, each with its rider's name, its age since assignment, its public tracking link, and the rider's
    trail. One query."""
    rows = list(
        Order.objects.filter(city=city, status__in=ACTIVE_STATUSES)
        .select_related("rider")
        .annotate(trail=_trail(now))
        .order_by("assigned_at", "pk")[: TRIPS_LIMIT + 1]
    )
    trips = []
    for order in rows[:TRIPS_LIMIT]:
        assert order.rider is not None  # the database holds it: an active order has a rider
        trips.append(
            {
                "order_id": order.pk,
                "external_ref": order.external_ref,
                "status": order.status,
                "status_label": order.get_status_display(),
                "is_flagged": order.is_flagged,
                "rider_id": order.rider_id,
                "rider_name": order.rider.name,
                "assigned_at": _iso(order.assigned_at),
                "updated_at": _iso(order.updated_at),
                "age_s": _age_s(order.assigned_at, now),
                "pickup": _place(order.pickup_lat, order.pickup_lon, order.pickup_address),
                "drop": _place(order.drop_lat, order.drop_lon, order.drop_address),
                "trail": [[p["lat"], p["lon"]] for p in reversed(order.trail or [])],  # oldest first
                "track_url": reverse("dispatch:track", args=[order.tracking_token]),
            }
        )
    return trips, len(rows) > TRIPS_LIMIT


def _last_point(now: datetime) -> Subquery:
    """The outer rider's newest point of the last ``POSITION_WINDOW`` as one JSON object (one index probe)."""
    point = (
        LocationLog.objects.filter(
            rider_id=OuterRef("pk"), recorded_at__gte=now - POSITION_WINDOW, recorded_at__lte=now + _CLOCK_SKEW
        )
        .order_by("-recorded_at")
        .values(
            point=JSONObject(
                lat="lat",
                lon="lon",
                recorded_at="recorded_at",
                speed_kmh="speed_kmh",
                heading_deg="heading_deg",
                battery_pct="battery_pct",
            )
        )[:1]
    )
    return Subquery(point)


def riders_on_duty(*, city: City, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """The city's on-duty riders by name, each with the last known point (``position`` None when there is none
    in the last day), its age (``last_seen_s``: the page greys riders silent for ``RIDER_STALE_AFTER_S``), how
    many active orders the rider carries, and the hours-of-service minutes left. Two queries."""
    rows = list(
        Rider.objects.filter(city=city, duty_status=DutyStatus.ON)
        .annotate(
            last_point=_last_point(now),
            active_orders=order_selectors.rider_active_order_count(),
        )
        .order_by("name", "pk")
        .only("pk", "name", "mobile", "duty_changed_at")[: RIDERS_LIMIT + 1]
    )
    rows, more = rows[:RIDERS_LIMIT], len(rows) > RIDERS_LIMIT
    hos = rider_selectors.riders_hos(rider_ids=[rider.pk for rider in rows], now=now)
    riders = []
    for rider in rows:
        point = rider.last_point
        recorded_at = datetime.fromisoformat(point["recorded_at"]) if point else None
        riders.append(
            {
                "rider_id": rider.pk,
                "name": rider.name,
                "mobile": rider.mobile,
                "on_duty_since": _iso(rider.duty_changed_at),
                "active_orders": rider.active_orders,
                "hos_minutes_left": hos[rider.pk].minutes_left,
                "lat": point["lat"] if point else None,
                "lon": point["lon"] if point else None,
                "recorded_at": _iso(recorded_at),
                "last_seen_s": _age_s(recorded_at, now),
                "is_stale": recorded_at is None or now - recorded_at > timedelta(seconds=settings.RIDER_STALE_AFTER_S),
                "speed_kmh": point["speed_kmh"] if point else None,
                "heading_deg": point["heading_deg"] if point else None,
                "battery_pct": point["battery_pct"] if point else None,
            }
        )
    return riders, more


def alerts_open(*, city: City, now: datetime) -> list[dict[str, Any]]:
    """Open SOS alerts of the city, and escalated ones of every city (an escalation goes to every
    dispatcher), oldest first. One query."""
    alerts = (
        EmergencyAlert.objects.filter(status=AlertStatus.OPEN)
        .filter(Q(city=city) | Q(escalated_at__isnull=False))
        .select_related("rider", "city")
        .order_by("raised_at", "pk")[:ALERTS_LIMIT]
    )
    return [
        {
            "alert_id": alert.pk,
            "rider_id": alert.rider_id,
            "rider_name": alert.rider.name,
            "rider_mobile": alert.rider.mobile,
            "city": alert.city.code,
            "lat": alert.lat,
            "lon": alert.lon,
            "message": alert.message,
            "raised_at": _iso(alert.raised_at),
            "age_s": _age_s(alert.raised_at, now),
            "escalated": alert.escalated_at is not None,
        }
        for alert in alerts
    ]


def kpis(city_code: str) -> dict[str, Any]:
    """The KPI strip of one city, by direct queries (three) until the analytics stats view replaces it:
    ``active_riders`` (accounts active), ``riders_on_duty``, ``orders_today`` (created since the portal's local
    midnight), ``delivered_today`` and ``distance_today_km`` (``fleet.rider_distances_compute``'s figure)."""
    now = timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    code = city_code.upper()
    riders = Rider.objects.filter(city__code=code).aggregate(
        active=Count("pk", filter=Q(status=RiderStatus.ACTIVE)),
        on_duty=Count("pk", filter=Q(duty_status=DutyStatus.ON)),
    )
    orders = (
        Order.objects.filter(city__code=code)
        .filter(Q(created_at__gte=day_start) | Q(delivered_at__gte=day_start))
        .aggregate(
            created=Count("pk", filter=Q(created_at__gte=day_start)),
            delivered=Count("pk", filter=Q(status=OrderStatus.DELIVERED, delivered_at__gte=day_start)),
        )
    )
    distance_km = fleet_selectors.distance_km_on(day=day_start.date(), city_code=code)
    return {
        "active_riders": riders["active"],
        "riders_on_duty": riders["on_duty"],
        "orders_today": orders["created"],
        "delivered_today": orders["delivered"],
        "distance_today_km": round(distance_km, 1),
    }


def dashboard_state(*, city: City, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows for the city, JSON-ready: what the page renders and what a
    reconnecting browser re-syncs from. Eight queries whatever the city's size."""
    now = now or timezone.now()
    unassigned, unassigned_more = orders_unassigned(city=city, now=now)
    trips, trips_more = trips_active(city=city, now=now)
    riders, riders_more = riders_on_duty(city=city, now=now)
    return {
        "city": {"code": city.code, "name": city.name, "center": [city.center_lat, city.center_lon]},
        "generated_at": now.isoformat(),
        "stale_after_s": settings.RIDER_STALE_AFTER_S,
        "kpis": kpis(city.code),
        "unassigned": unassigned,
        "unassigned_more": unassigned_more,
        "trips": trips,
        "trips_more": trips_more,
        "riders": riders,
        "riders_more": riders_more,
        "alerts": alerts_open(city=city, now=now),
    }


#: Points of a trip the public tracking page draws (the newest; a long trip is cut, not thinned).
TRACK_PAGE_POINTS = 300


def trip_public(*, order_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """What the public tracking page of one order shows, JSON-ready; None for no such order.

    Only that trip: its reference, status, pickup and drop, the rider's first name, and while the order is
    active the rider's newest point and trail since assignment. Nothing else of the rider (no mobile, no
    position once the trip is over). Two queries.
    """
    now = now or timezone.now()
    order = Order.objects.select_related("rider", "city").filter(pk=order_id).first()
    if order is None:
        return None
    is_active = order.status in ACTIVE_STATUSES
    trail: list[list[float]] = []
    position = None
    if is_active and order.rider_id is not None:
        since = max(order.assigned_at or now - TRAIL_WINDOW, now - timedelta(hours=12))
        rows = (
            LocationLog.objects.filter(
                rider_id=order.rider_id, recorded_at__gte=since, recorded_at__lte=now + _CLOCK_SKEW
            )
            .order_by("-recorded_at")
            .values_list("lat", "lon", "recorded_at", "heading_deg")[:TRACK_PAGE_POINTS]
        )
        points = list(rows)
        trail = [[lat, lon] for lat, lon, _, _ in reversed(points)]
        if points:
            lat, lon, recorded_at, heading = points[0]
            position = {"lat": lat, "lon": lon, "recorded_at": _iso(recorded_at), "heading_deg": heading}
    rider_name = order.rider.name.split()[0] if order.rider is not None and order.rider.name else ""
    return {
        "order_id": order.pk,
        "external_ref": order.external_ref,
        "city": order.city.code,
        "status": order.status,
        "status_label": order.get_status_display(),
        "is_active": is_active,
        "rider_id": order.rider_id if is_active else None,
        "rider_first_name": rider_name if is_active else "",
        "pickup": _place(order.pickup_lat, order.pickup_lon, order.pickup_address),
        "drop": _place(order.drop_lat, order.drop_lon, order.drop_address),
        "position": position,
        "trail": trail,
        "updated_at": _iso(order.updated_at),
    }
