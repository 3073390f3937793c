"""Ops work orders in the admin: filter the list, read an order's history and offers, open its proof photo
through a permission-checked view, and send orders back to automatic assignment."""

import io
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import OfferStatus, OrderStatus
from riders.models import DutyStatus, KycStatus, Rider
from tests.fleet.factories import CityFactory
from tests.orders.factories import DeliveredOrderFactory, OrderFactory, OrderOfferFactory
from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:orders_order_changelist")


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def proof_url(order) -> str:
    return reverse("admin:orders_order_proof_photo", args=[order.pk])


@pytest.fixture
def city():
    return CityFactory(code="BLR")


def test_the_changelist_filters_by_status_city_flag_and_date(staff_client, city):
    wanted = OrderFactory(city=city, external_ref="WANTED-1", is_flagged=True)
    OrderFactory(city=CityFactory(), external_ref="OTHER-1")
    DeliveredOrderFactory(city=city, external_ref="DONE-1")

    response = staff_client.get(
        CHANGELIST,
        {
            "status__exact": "CREATED",
            "city__id__exact": city.pk,
            "is_flagged__exact": "1",
            "created_at__gte": (timezone.now() - timedelta(days=1)).isoformat(),
        },
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert wanted.external_ref in body
    assert "OTHER-1" not in body
    assert "DONE-1" not in body


def test_the_change_page_shows_the_offers_and_a_link_to_the_proof_photo(staff_client, city):
    offer = OrderOfferFactory(order=DeliveredOrderFactory(city=city), status=OfferStatus.ACCEPTED, distance_m=730)
    order = offer.order
    order.proof_photo.save("proof.jpg", ContentFile(jpeg_bytes()), save=True)

    response = staff_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Order offers" in body
    assert "730" in body
    assert proof_url(order) in body


def test_staff_open_the_proof_photo_as_an_image_never_cached(staff_client, city):
    order = DeliveredOrderFactory(city=city)
    order.proof_photo.save("looks-like-a-page.html", ContentFile(jpeg_bytes()), save=True)

    response = staff_client.get(proof_url(order))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"  # from the bytes, not the name it was uploaded with
    assert {"private", "no-store"} <= {part.strip() for part in response["Cache-Control"].split(",")}
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == jpeg_bytes()


def test_the_proof_photo_is_404_to_staff_not_allowed_to_view_orders(client, city):
    order = DeliveredOrderFactory(city=city)
    order.proof_photo.save("proof.jpg", ContentFile(jpeg_bytes()), save=True)
    client.force_login(UserFactory(is_staff=True))

    assert client.get(proof_url(order)).status_code == 404


def test_the_proof_photo_sends_others_to_log_in(client, city):
    order = DeliveredOrderFactory(city=city)
    order.proof_photo.save("proof.jpg", ContentFile(jpeg_bytes()), save=True)
    client.force_login(UserFactory())

    response = client.get(proof_url(order))

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_an_order_without_a_photo_has_none_to_open(staff_client, city):
    assert staff_client.get(proof_url(DeliveredOrderFactory(city=city))).status_code == 404


def _available_rider(city, capture) -> Rider:
    rider = RiderFactory(
        city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now()
    )
    DutyLogFactory(rider=rider, started_at=rider.duty_changed_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rider.user).key}")
    point = {"lat": 12.9716, "lon": 77.5946, "recorded_at": timezone.now().isoformat()}
    with capture(execute=True):
        assert client.post("/api/v1/driver/locations/", {"points": [point]}, format="json").status_code == 202
    return rider


def test_reassign_automatically_offers_each_order_and_reports_the_ones_it_could_not(
    staff_client, city, django_capture_on_commit_callbacks
):
    rider = _available_rider(city, django_capture_on_commit_callbacks)
    waiting = OrderFactory(city=city, external_ref="WAITING-1")
    delivered = DeliveredOrderFactory(city=city, external_ref="DONE-1")

    response = staff_client.post(
        CHANGELIST, {"action": "reassign_automatically", "_selected_action": [waiting.pk, delivered.pk]}
    )

    assert response.status_code == 302
    messages = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert [level for level, _ in messages] == ["success", "error"]
    assert "Offered 1 order(s): WAITING-1" in messages[0][1]
    assert "Not assigned, 1 order(s): DONE-1: The order is DELIVERED" in messages[1][1]
    waiting.refresh_from_db()
    assert (waiting.status, waiting.rider_id) == (OrderStatus.ASSIGNED, rider.pk)


def test_reassign_automatically_with_nobody_available_flags_and_reports(staff_client, city):
    order = OrderFactory(city=city, external_ref="LONELY-1")

    response = staff_client.post(CHANGELIST, {"action": "reassign_automatically", "_selected_action": [order.pk]})

    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert "LONELY-1" in message.message
    order.refresh_from_db()
    assert (order.status, order.is_flagged) == (OrderStatus.CREATED, True)
