"""The dashboard's actions go through the orders and riders services: assign, reassign, cancel, acknowledge an
SOS. Refusals come back as messages (or JSON for the page's script), never as a 500."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import OrderEvent, OrderStatus
from riders.models import AlertStatus, DutyStatus, KycStatus
from tests.fleet.factories import CityFactory
from tests.orders.factories import AcceptedOrderFactory, OrderFactory, PickedUpOrderFactory
from tests.riders.factories import DutyLogFactory, EmergencyAlertFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return CityFactory(code=f"A{uuid.uuid4().hex[:6].upper()}")


def on_duty_rider(city, **fields):
    now = timezone.now()
    rider = RiderFactory(
        city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=now, **fields
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=5))
    return rider


def post(client, name: str, pk: int, city, data: dict | None = None, *, as_json: bool = False):
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post(reverse(f"dispatch:{name}", args=[pk]), {"city": city.code, **(data or {})}, headers=headers)


def said(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_a_dispatcher_assigns_an_unassigned_order_to_the_rider_picked(staff_client, admin_user, city):
    order = OrderFactory(city=city, external_ref=f"R-{city.code}", is_flagged=True)
    rider = on_duty_rider(city, name="Meera Iyer")

    response = post(staff_client, "order-assign", order.pk, city, {"rider_id": rider.pk})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('dispatch:dashboard')}?city={city.code}"
    assert said(response) == [("success", f"Order R-{city.code} offered to Meera Iyer.")]
    order.refresh_from_db()
    assert (order.status, order.rider_id, order.is_flagged) == (OrderStatus.ASSIGNED, rider.pk, False)
    assert OrderEvent.objects.get(order=order, to_status=OrderStatus.ASSIGNED).actor_id == admin_user.pk


def test_a_dispatcher_reassigns_an_accepted_order_to_another_rider(staff_client, city):
    order = AcceptedOrderFactory(city=city, rider=on_duty_rider(city))
    other = on_duty_rider(city)
    response = post(staff_client, "order-assign", order.pk, city, {"rider_id": other.pk}, as_json=True)
    assert response.status_code == 200
    assert response.json()["ok"] is True
    order.refresh_from_db()
    assert (order.status, order.rider_id) == (OrderStatus.ASSIGNED, other.pk)


def test_a_rider_who_may_not_take_the_order_is_refused_with_the_reason(staff_client, city):
    order = OrderFactory(city=city)
    off_duty = RiderFactory(city=city, kyc_status=KycStatus.APPROVED, name="Off Duty")
    response = post(staff_client, "order-assign", order.pk, city, {"rider_id": off_duty.pk})
    assert said(response) == [("error", "Off Duty is not on duty.")]
    json_response = post(staff_client, "order-assign", order.pk, city, {"rider_id": off_duty.pk}, as_json=True)
    assert json_response.status_code == 422
    assert json_response.json() == {"ok": False, "message": "Off Duty is not on duty."}
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_assigning_without_a_rider_or_to_an_unknown_one_is_a_message(staff_client, city):
    order = OrderFactory(city=city)
    assert said(post(staff_client, "order-assign", order.pk, city, {"rider_id": ""})) == [("error", "Pick a rider.")]
    assert (
        post(staff_client, "order-assign", order.pk, city, {"rider_id": 999_999_999}, as_json=True).status_code == 404
    )


def test_a_picked_up_order_cannot_be_reassigned_and_the_dispatcher_is_told_why(staff_client, city):
    order = PickedUpOrderFactory(city=city)
    response = post(staff_client, "order-assign", order.pk, city, {"rider_id": on_duty_rider(city).pk}, as_json=True)
    assert response.status_code == 409
    assert response.json() == {"ok": False, "message": "The order is PICKED_UP; it cannot become ASSIGNED."}


def test_a_dispatcher_cancels_an_order_with_a_reason(staff_client, city):
    order = OrderFactory(city=city, external_ref=f"C-{city.code}")
    response = post(staff_client, "order-cancel", order.pk, city, {"reason": "  Customer called to cancel "})
    assert said(response) == [("success", f"Order C-{city.code} cancelled.")]
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "Customer called to cancel")


def test_cancelling_needs_a_reason(staff_client, city):
    order = OrderFactory(city=city)
    response = post(staff_client, "order-cancel", order.pk, city, {"reason": "   "})
    assert said(response) == [("error", "Say why the order is cancelled.")]
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_cancelling_a_picked_up_order_is_an_illegal_transition_shown_as_a_message(staff_client, city):
    order = PickedUpOrderFactory(city=city)
    response = post(staff_client, "order-cancel", order.pk, city, {"reason": "too late"})
    assert response.status_code == 302
    assert said(response) == [("error", "The order is PICKED_UP; it cannot become CANCELLED.")]
    page = staff_client.get(response["Location"])
    assert "The order is PICKED_UP; it cannot become CANCELLED." in page.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PICKED_UP


def test_a_dispatcher_acknowledges_an_open_sos_once(staff_client, admin_user, city):
    alert = EmergencyAlertFactory(rider=RiderFactory(city=city))
    first = post(staff_client, "alert-acknowledge", alert.pk, city, as_json=True)
    assert first.json() == {"ok": True, "message": f"SOS #{alert.pk} acknowledged."}
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by_id) == (AlertStatus.ACKNOWLEDGED, admin_user.pk)
    second = post(staff_client, "alert-acknowledge", alert.pk, city)
    assert said(second) == [("error", "This SOS was already acknowledged.")]
    assert post(staff_client, "alert-acknowledge", 999_999_999, city, as_json=True).status_code == 404


def test_actions_are_for_staff_only(client, city):
    order = OrderFactory(city=city)
    alert = EmergencyAlertFactory(rider=RiderFactory(city=city))
    client.force_login(UserFactory(is_staff=False))
    assert post(client, "order-cancel", order.pk, city, {"reason": "no"}).status_code == 302
    assert post(client, "alert-acknowledge", alert.pk, city).status_code == 302
    order.refresh_from_db()
    alert.refresh_from_db()
    assert (order.status, alert.status) == (OrderStatus.CREATED, AlertStatus.OPEN)


def test_actions_need_the_csrf_token(admin_user, city):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    order = OrderFactory(city=city)
    assert post(client, "order-cancel", order.pk, city, {"reason": "forged"}).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_actions_answer_only_posts(staff_client, city):
    order = OrderFactory(city=city)
    assert staff_client.get(reverse("dispatch:order-cancel", args=[order.pk])).status_code == 405
