"""The dispatcher dashboard: staff only, the current state server-rendered in one request at a fixed query cost,
a JSON snapshot of the same state for re-syncs, and the public tracking page of one trip."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dispatch import selectors
from fleet.models import LocationLog
from orders.models import OrderStatus
from riders.models import DutyStatus, KycStatus
from tests.fleet.factories import CityFactory, RiderDayDistanceFactory
from tests.orders.factories import AcceptedOrderFactory, DeliveredOrderFactory, OrderFactory, PickedUpOrderFactory
from tests.riders.factories import DutyLogFactory, EmergencyAlertFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return CityFactory(code=f"P{uuid.uuid4().hex[:6].upper()}", name="Alpha city")


def on_duty_rider(city, *, name: str = "", minutes_on_duty: int = 30, point_age_s: int | None = 20, **fields):
    now = timezone.now()
    rider = RiderFactory(
        city=city,
        kyc_status=KycStatus.APPROVED,
        duty_status=DutyStatus.ON,
        duty_changed_at=now - timedelta(minutes=minutes_on_duty),
        **({"name": name} if name else {}),
        **fields,
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=minutes_on_duty))
    if point_age_s is not None:
        LocationLog.objects.create(
            rider=rider, recorded_at=now - timedelta(seconds=point_age_s), lat=12.97, lon=77.59, heading_deg=90
        )
    return rider


def page_state(response) -> dict:
    """The state the page hands its script (``json_script``)."""
    return response.context["state"]


def test_anonymous_visitors_are_sent_to_the_admin_login(client, city):
    response = client.get(reverse("dispatch:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_signed_in_user_who_is_not_staff_does_not_see_the_dashboard(client, city):
    client.force_login(UserFactory(is_staff=False))
    response = client.get(reverse("dispatch:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_state_snapshot_is_refused_to_anyone_but_staff(client, city):
    assert client.get(reverse("dispatch:state"), {"city": city.code}).status_code == 403
    client.force_login(UserFactory(is_staff=False))
    assert client.get(reverse("dispatch:state"), {"city": city.code}).status_code == 403


def test_the_first_active_city_is_shown_unless_one_is_picked(staff_client):
    CityFactory(code="ZZINACT", name="Aaa inactive", is_active=False)
    first = CityFactory(code=f"A{uuid.uuid4().hex[:6].upper()}", name="!first by name")
    other = CityFactory(code=f"B{uuid.uuid4().hex[:6].upper()}", name="~last by name")
    assert staff_client.get(reverse("dispatch:dashboard")).context["city"] == first
    picked = staff_client.get(reverse("dispatch:dashboard"), {"city": other.code.lower()})
    assert picked.context["city"] == other
    assert staff_client.get(reverse("dispatch:dashboard"), {"city": "ZZINACT"}).status_code == 404


def test_the_page_renders_every_list_of_the_city_with_flagged_orders_first(staff_client, city):
    now = timezone.now()
    older = OrderFactory(city=city, external_ref=f"OLD-{city.code}")
    older.created_at = now - timedelta(minutes=30)
    older.save(update_fields=["created_at"])
    newer_flagged = OrderFactory(city=city, external_ref=f"FLAG-{city.code}", is_flagged=True)
    rider = on_duty_rider(city, name="Asha Rao")
    trip = AcceptedOrderFactory(city=city, rider=rider, external_ref=f"TRIP-{city.code}")
    silent = on_duty_rider(city, name="Silent Sam", point_age_s=3600)
    alert = EmergencyAlertFactory(rider=rider, message="Accident near the flyover")
    elsewhere = CityFactory(code=f"Q{uuid.uuid4().hex[:6].upper()}")
    OrderFactory(city=elsewhere, external_ref=f"ELSEWHERE-{city.code}")
    EmergencyAlertFactory(rider=RiderFactory(city=elsewhere))  # another city's, not escalated: not shown
    DeliveredOrderFactory(city=city, rider=rider)  # finished: in no list

    response = staff_client.get(reverse("dispatch:dashboard"), {"city": city.code})

    assert response.status_code == 200
    state = page_state(response)
    assert [o["order_id"] for o in state["unassigned"]] == [newer_flagged.pk, older.pk]
    assert [t["order_id"] for t in state["trips"]] == [trip.pk]
    assert state["trips"][0]["rider_name"] == "Asha Rao"
    assert state["trips"][0]["status"] == OrderStatus.ACCEPTED
    assert {r["name"]: r["is_stale"] for r in state["riders"]} == {"Asha Rao": False, "Silent Sam": True}
    asha = next(r for r in state["riders"] if r["rider_id"] == rider.pk)
    assert asha["heading_deg"] == 90
    assert asha["active_orders"] == 1
    # 30 minutes on duty, of which today's (the local day: fewer just after midnight) count against the limit;
    # a minute boundary may pass between the page's clock and this one.
    local_now = timezone.localtime()
    since_midnight = int((local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
    on_duty_today = min(30, since_midnight // 60)
    assert 12 * 60 - on_duty_today - 1 <= asha["hos_minutes_left"] <= 12 * 60 - on_duty_today
    assert silent.pk in {r["rider_id"] for r in state["riders"]}
    assert [a["alert_id"] for a in state["alerts"]] == [alert.pk]
    html = response.content.decode()
    assert html.index(f"FLAG-{city.code}") < html.index(f"OLD-{city.code}")
    assert f"ELSEWHERE-{city.code}" not in html
    assert "Accident near the flyover" in html
    assert "Acknowledge" in html
    assert trip.tracking_token in html  # the trip's public tracking link
    # The script gets the same state, and nothing runs inline (issue 9's CSP).
    assert json.loads(_json_script(html, "dispatch-state"))["trips"][0]["order_id"] == trip.pk
    assert "<script>" not in html


def _json_script(html: str, element_id: str) -> str:
    start = html.index(f'<script id="{element_id}" type="application/json">')
    start = html.index(">", start) + 1
    return html[start : html.index("</script>", start)]


def test_an_escalated_sos_of_another_city_is_on_every_citys_dashboard(staff_client, city):
    elsewhere = CityFactory(code=f"E{uuid.uuid4().hex[:6].upper()}")
    escalated = EmergencyAlertFactory(rider=RiderFactory(city=elsewhere), escalated_at=timezone.now())
    state = page_state(staff_client.get(reverse("dispatch:dashboard"), {"city": city.code}))
    assert [(a["alert_id"], a["escalated"], a["city"]) for a in state["alerts"]] == [
        (escalated.pk, True, elsewhere.code)
    ]


def test_the_active_trips_carry_the_riders_recent_trail_oldest_first(staff_client, city):
    rider = on_duty_rider(city, point_age_s=None)
    now = timezone.now()
    for seconds, lat in ((50, 12.90), (30, 12.91), (10, 12.92)):
        LocationLog.objects.create(rider=rider, recorded_at=now - timedelta(seconds=seconds), lat=lat, lon=77.6)
    LocationLog.objects.create(rider=rider, recorded_at=now - timedelta(hours=2), lat=12.5, lon=77.6)  # too old
    PickedUpOrderFactory(city=city, rider=rider)
    state = page_state(staff_client.get(reverse("dispatch:dashboard"), {"city": city.code}))
    assert state["trips"][0]["trail"] == [[12.90, 77.6], [12.91, 77.6], [12.92, 77.6]]


def _fill(city, n: int) -> None:
    for _ in range(n):
        rider = on_duty_rider(city)
        OrderFactory(city=city)
        AcceptedOrderFactory(city=city, rider=rider)
        EmergencyAlertFactory(rider=rider)


def test_the_page_costs_the_same_few_queries_however_much_the_city_holds(
    staff_client, city, django_assert_max_num_queries
):
    # The session lives in Redis: the user, the cities, then the state's eight queries.
    _fill(city, 2)
    with django_assert_max_num_queries(10):
        small = staff_client.get(reverse("dispatch:dashboard"), {"city": city.code})
    _fill(city, 8)
    with django_assert_max_num_queries(10):
        large = staff_client.get(reverse("dispatch:dashboard"), {"city": city.code})
    assert len(page_state(small)["riders"]) == 2
    assert len(page_state(large)["riders"]) == 10
    assert len(page_state(large)["trips"]) == 10


def test_lists_are_bounded_and_say_there_are_more(staff_client, city, monkeypatch):
    monkeypatch.setattr(selectors, "UNASSIGNED_LIMIT", 2)
    for _ in range(3):
        OrderFactory(city=city)
    state = page_state(staff_client.get(reverse("dispatch:dashboard"), {"city": city.code}))
    assert len(state["unassigned"]) == 2
    assert state["unassigned_more"] is True


def test_the_kpis_count_the_citys_riders_and_todays_orders(city):
    rider = on_duty_rider(city)
    RiderFactory(city=city)  # active, off duty
    OrderFactory(city=city)
    DeliveredOrderFactory(city=city, rider=rider)
    RiderDayDistanceFactory(rider=rider, day=timezone.localdate(), distance_m=12_345)
    assert selectors.kpis(city.code) == {
        "active_riders": 2,
        "riders_on_duty": 1,
        "orders_today": 2,
        "delivered_today": 1,
        "distance_today_km": 12.3,
    }


def test_the_state_snapshot_answers_what_the_page_shows(staff_client, city):
    rider = on_duty_rider(city, name="Zoya")
    OrderFactory(city=city, is_flagged=True)
    EmergencyAlertFactory(rider=rider)
    response = staff_client.get(reverse("dispatch:state"), {"city": city.code})
    assert response.status_code == 200
    snapshot = response.json()
    page = page_state(staff_client.get(reverse("dispatch:dashboard"), {"city": city.code}))
    for key in ("unassigned", "trips", "alerts", "kpis", "city"):
        assert _without_ages(snapshot[key]) == _without_ages(page[key])
    assert [r["name"] for r in snapshot["riders"]] == ["Zoya"]
    assert staff_client.get(reverse("dispatch:state"), {"city": "NOPE"}).status_code == 404


def _without_ages(value):
    if isinstance(value, list):
        return [_without_ages(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_ages(v) for k, v in value.items() if k not in {"age_s", "last_seen_s"}}
    return value


# --- The public tracking page ---------------------------------------------------------------------------


def test_the_tracking_page_shows_only_its_trip_without_login(client, city):
    rider = on_duty_rider(city, name="Ravi Kumar")
    order = PickedUpOrderFactory(city=city, rider=rider, external_ref=f"TRACKED-{city.code}")
    AcceptedOrderFactory(city=city, external_ref=f"UNTRACKED-{city.code}")
    response = client.get(reverse("dispatch:track", args=[order.tracking_token]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"TRACKED-{city.code}" in html
    assert f"UNTRACKED-{city.code}" not in html
    assert rider.mobile not in html  # the rider's first name, never the number
    trip = response.context["trip"]
    assert trip["order_id"] == order.pk
    assert trip["rider_first_name"] == "Ravi"
    assert trip["position"]["lat"] == 12.97
    assert f"/ws/orders/{order.pk}/track/?token=" in html
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_tracking_link_that_is_no_orders_token_is_not_found(client, city):
    order = OrderFactory(city=city)
    token = order.tracking_token
    assert client.get(reverse("dispatch:track", args=[token[:-2] + "xx"])).status_code == 404
    assert client.get(reverse("dispatch:track", args=["not-a-token"])).status_code == 404
    order.delete()
    assert client.get(reverse("dispatch:track", args=[token])).status_code == 404


def test_once_the_trip_is_over_its_tracking_page_no_longer_shows_the_rider(client, city):
    rider = on_duty_rider(city, name="Ravi Kumar")
    order = DeliveredOrderFactory(city=city, rider=rider)
    response = client.get(reverse("dispatch:track", args=[order.tracking_token]))
    assert response.status_code == 200
    trip = response.context["trip"]
    assert (trip["status"], trip["position"], trip["trail"], trip["rider_first_name"]) == (
        OrderStatus.DELIVERED,
        None,
        [],
        "",
    )
    assert "Ravi" not in response.content.decode()


def test_the_pages_carry_a_content_security_policy(staff_client, settings):
    settings.DISPATCH_TILE_URL = "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    policy = staff_client.get("/dispatch/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "img-src 'self' data: https://*.tile.example.org" in policy
    assert "unsafe-eval" not in policy
