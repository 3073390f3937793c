"""An order's trip as GeoJSON: the rider's points from pickup to delivery, read in one query that PostgreSQL
prunes to the trip's partitions, with its length, and the pickup and drop."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from fleet.geo import LatLon, haversine_m
from fleet.services import Point, location_points_record
from orders.models import OrderStatus
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.orders.factories import (
    AssignedOrderFactory,
    DeliveredOrderFactory,
    OrderFactory,
    PartnerFactory,
    PickedUpOrderFactory,
)
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

START = (12.9716, 77.5946)


def track_url(order) -> str:
    return f"/api/v1/orders/{order.pk}/track/"


def record(rider, times: list[datetime], *, step_deg: float = 0.001) -> list[Point]:
    """One point a time, each ``step_deg`` of latitude (about 111 m) north of the one before."""
    points = [Point(recorded_at=at, lat=START[0] + i * step_deg, lon=START[1]) for i, at in enumerate(times)]
    location_points_record(rider_id=rider.pk, points=points)
    return points


def length_m(points: list[Point]) -> int:
    return round(sum(haversine_m(LatLon(a.lat, a.lon), LatLon(b.lat, b.lon)) for a, b in pairwise(points)))


def features(response) -> tuple[dict, dict, dict]:
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["type"] == "FeatureCollection"
    route, pickup, drop = data["features"]
    return route, pickup, drop


@pytest.fixture
def partner():
    return PartnerFactory()


@pytest.fixture
def api(partner) -> APIClient:
    return client_of(partner)


@pytest.fixture
def city():
    return CityFactory(code="BLR")


def test_a_delivered_trip_is_the_riders_points_between_pickup_and_delivery(api, partner, city):
    now = timezone.now().replace(microsecond=0)
    picked_up_at, delivered_at = now - timedelta(minutes=30), now - timedelta(minutes=5)
    order = DeliveredOrderFactory(city=city, created_by=partner, picked_up_at=picked_up_at, delivered_at=delivered_at)
    before = record(order.rider, [picked_up_at - timedelta(minutes=m) for m in (3, 2, 1)], step_deg=-0.01)
    during = record(order.rider, [picked_up_at + timedelta(minutes=m) for m in range(0, 26, 5)])
    assert during[-1].recorded_at == delivered_at
    location_points_record(rider_id=order.rider_id, points=[Point(now - timedelta(minutes=1), 13.5, 78.0)])
    record(RiderFactory(city=city), [picked_up_at + timedelta(minutes=1)], step_deg=0.1)  # someone else's
    assert before

    route, pickup, drop = features(api.get(track_url(order)))

    assert route["geometry"] == {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in during]}
    properties = route["properties"]
    assert properties["kind"] == "route"
    assert (properties["order_id"], properties["status"], properties["rider_id"]) == (
        order.pk,
        "DELIVERED",
        order.rider_id,
    )
    assert properties["points"] == len(during) == 6
    assert properties["distance_m"] == length_m(during)
    assert 550 <= properties["distance_m"] <= 560  # five steps of 0.001° of latitude
    assert datetime.fromisoformat(properties["started_at"]) == picked_up_at
    assert datetime.fromisoformat(properties["ended_at"]) == delivered_at
    assert properties["truncated"] is False
    assert pickup == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [order.pickup_lon, order.pickup_lat]},
        "properties": {"kind": "pickup", "address": order.pickup_address},
    }
    assert drop["geometry"] == {"type": "Point", "coordinates": [order.drop_lon, order.drop_lat]}
    assert drop["properties"] == {"kind": "drop", "address": order.drop_address}


def test_a_trip_under_way_runs_until_now(api, partner, city):
    now = timezone.now()
    order = PickedUpOrderFactory(city=city, created_by=partner, picked_up_at=now - timedelta(minutes=10))
    points = record(order.rider, [now - timedelta(minutes=m) for m in (9, 6, 3, 0)])

    route, _, _ = features(api.get(track_url(order)))

    assert len(route["geometry"]["coordinates"]) == 4
    assert route["properties"]["distance_m"] == length_m(points)
    assert route["properties"]["ended_at"] is None


@pytest.mark.parametrize("factory", [OrderFactory, AssignedOrderFactory])
def test_an_order_never_picked_up_has_an_empty_line(api, partner, city, factory):
    order = factory(city=city, created_by=partner)
    if order.rider_id:
        record(order.rider, [timezone.now() - timedelta(minutes=1)])

    route, pickup, drop = features(api.get(track_url(order)))

    assert route["geometry"] == {"type": "LineString", "coordinates": []}
    assert (route["properties"]["distance_m"], route["properties"]["points"]) == (0, 0)
    assert route["properties"]["started_at"] is None
    assert (pickup["properties"]["kind"], drop["properties"]["kind"]) == ("pickup", "drop")


def test_a_cancelled_order_has_an_empty_line(api, partner, city):
    order = OrderFactory(city=city, created_by=partner, status=OrderStatus.CANCELLED, closed_at=timezone.now())
    route, _, _ = features(api.get(track_url(order)))
    assert route["geometry"]["coordinates"] == []


def test_the_points_are_read_in_one_query_pruned_to_the_trips_partition(api, partner, city):
    with connection.cursor() as cursor:
        for day in (
            datetime(2031, 2, 10, tzinfo=UTC),
            datetime(2031, 3, 10, tzinfo=UTC),
            datetime(2031, 4, 10, tzinfo=UTC),
        ):
            cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [day])
    picked_up_at = datetime(2031, 3, 15, 10, 0, tzinfo=UTC)
    order = DeliveredOrderFactory(
        city=city, created_by=partner, picked_up_at=picked_up_at, delivered_at=picked_up_at + timedelta(minutes=30)
    )
    record(order.rider, [picked_up_at + timedelta(minutes=m) for m in (0, 10, 20, 30)])

    with CaptureQueriesContext(connection) as captured:
        route, _, _ = features(api.get(track_url(order)))

    assert route["properties"]["points"] == 4
    [query] = [q["sql"] for q in captured if "fleet_locationlog" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    scanned = {word.strip('"(),') for word in plan.split() if word.strip('"(),').startswith("fleet_locationlog_")}
    scanned = {name for name in scanned if not name.endswith(("_pkey", "_idx", "_brin"))}
    assert scanned == {"fleet_locationlog_p203103"}, plan


def test_the_track_is_for_the_order_owner_and_staff(city, partner):
    order = DeliveredOrderFactory(city=city, created_by=partner, picked_up_at=timezone.now() - timedelta(minutes=9))

    response = client_of(PartnerFactory()).get(track_url(order))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client_of(UserFactory(is_staff=True)).get(track_url(order)).status_code == 200
    assert APIClient().get(track_url(order)).status_code == 401
