"""Riders see the orders offered to them and work them through the app: accept, pick up, deliver with proof,
fail with a reason, or decline an offer. Other riders' orders do not exist for them."""

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from orders.models import OfferStatus, Order, OrderEvent, OrderStatus, ProofMethod
from riders.models import KycStatus, Rider
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.orders.factories import (
    AcceptedOrderFactory,
    AssignedOrderFactory,
    DeliveredOrderFactory,
    OrderFactory,
    OrderOfferFactory,
    PartnerFactory,
    PickedUpOrderFactory,
)
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

MINE = "/api/v1/driver/orders/"
DROP = (12.9352, 77.6245)
#: About 100 m north of the drop: close enough to deliver.
AT_DROP = {"lat": DROP[0] + 0.0009, "lon": DROP[1]}
#: About 1.1 km north of the drop.
AWAY = {"lat": DROP[0] + 0.01, "lon": DROP[1]}


def status_url(order: Order) -> str:
    return f"{MINE}{order.pk}/status/"


def reject_url(order: Order) -> str:
    return f"{MINE}{order.pk}/reject/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def jpeg(*, taken_at: str | None = None, name: str = "proof.jpg") -> io.BytesIO:
    """A small real JPEG; with ``taken_at`` (``YYYY:MM:DD HH:MM:SS``) it carries EXIF DateTimeOriginal."""
    exif = Image.Exif()
    if taken_at is not None:
        exif.get_ifd(0x8769)[0x9003] = taken_at
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="JPEG", exif=exif.tobytes())
    buffer.seek(0)
    buffer.name = name
    return buffer


def exif_time(at) -> str:
    return timezone.localtime(at).strftime("%Y:%m:%d %H:%M:%S")


@pytest.fixture
def city():
    return CityFactory(code="BLR")


@pytest.fixture
def rider(city) -> Rider:
    return RiderFactory(city=city, kyc_status=KycStatus.APPROVED)


@pytest.fixture
def app(rider) -> APIClient:
    return client_of(rider.user)


@pytest.fixture
def offered(rider, city) -> Order:
    """An order offered to the rider, the offer waiting for an answer."""
    return OrderOfferFactory(order=AssignedOrderFactory(city=city, rider=rider)).order


@pytest.fixture
def picked_up(rider, city) -> Order:
    return PickedUpOrderFactory(city=city, rider=rider)


# --- the rider's orders ----------------------------------------------------------------------------------


def test_a_rider_lists_the_orders_offered_accepted_and_picked_up(app, rider, city, offered):
    accepted = AcceptedOrderFactory(city=city, rider=rider)
    picked = PickedUpOrderFactory(city=city, rider=rider)
    DeliveredOrderFactory(city=city, rider=rider)
    AssignedOrderFactory(city=city)  # another rider's
    OrderFactory(city=city)  # nobody's yet

    response = app.get(MINE)

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [picked.pk, accepted.pk, offered.pk]
    by_id = {row["id"]: row for row in rows}
    assert by_id[offered.pk]["offer_expires_at"] is not None
    assert by_id[accepted.pk]["offer_expires_at"] is None
    assert by_id[offered.pk]["drop"] == {"lat": DROP[0], "lon": DROP[1], "address": offered.drop_address}
    assert by_id[offered.pk]["cod_amount"] == "0.00"


def test_the_rider_never_sees_the_delivery_otp(app, offered):
    listed = app.get(MINE)
    stepped = app.post(status_url(offered), {"status": "ACCEPTED"}, format="json")

    assert listed.status_code == 200, listed.content
    assert stepped.status_code == 200, stepped.content
    for row in (listed.json()["results"][0], stepped.json()):
        assert "delivery_otp" not in row
        assert offered.delivery_otp not in [str(value) for value in row.values()]


def test_the_rider_list_costs_the_same_queries_for_any_number_of_orders(app, rider, city):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert app.get(MINE).status_code == 200
        return len(captured)

    OrderOfferFactory(order=AssignedOrderFactory(city=city, rider=rider))
    few = queries()
    for _ in range(6):
        OrderOfferFactory(order=AssignedOrderFactory(city=CityFactory(), rider=rider))
        PickedUpOrderFactory(city=city, rider=rider)
    assert queries() == few


def test_driver_order_endpoints_need_a_rider_token(offered):
    for client, status, code in (
        (APIClient(), 401, "not_authenticated"),
        (client_of(UserFactory(is_staff=True)), 403, "permission_denied"),
        (client_of(PartnerFactory()), 403, "permission_denied"),
    ):
        assert_error(client.get(MINE), status, code)
        assert_error(client.post(status_url(offered), {"status": "ACCEPTED"}, format="json"), status, code)
        assert_error(client.post(reject_url(offered)), status, code)


def test_another_riders_order_is_404(city, offered):
    other = client_of(RiderFactory(city=city, kyc_status=KycStatus.APPROVED).user)

    assert_error(other.post(status_url(offered), {"status": "ACCEPTED"}, format="json"), 404, "not_found")
    assert_error(other.post(reject_url(offered)), 404, "not_found")
    offered.refresh_from_db()
    assert offered.status == OrderStatus.ASSIGNED


def test_an_order_that_does_not_exist_is_404(app):
    assert_error(app.post(f"{MINE}999999/status/", {"status": "ACCEPTED"}, format="json"), 404, "not_found")


# --- the steps -----------------------------------------------------------------------------------------------


def test_accept_pick_up_and_deliver_with_the_otp(app, rider, offered):
    accepted = app.post(status_url(offered), {"status": "ACCEPTED", "lat": 12.97, "lon": 77.59}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "ACCEPTED"
    assert offered.offers.get().status == OfferStatus.ACCEPTED

    picked = app.post(status_url(offered), {"status": "PICKED_UP", "lat": 12.97, "lon": 77.59}, format="json")
    assert picked.status_code == 200, picked.content
    assert picked.json()["picked_up_at"]

    delivered = app.post(
        status_url(offered), {"status": "DELIVERED", "otp": offered.delivery_otp, **AT_DROP}, format="json"
    )

    assert delivered.status_code == 200, delivered.content
    assert delivered.json()["status"] == "DELIVERED"
    offered.refresh_from_db()
    assert (offered.status, offered.proof_method) == (OrderStatus.DELIVERED, ProofMethod.OTP)
    events = list(OrderEvent.objects.filter(order=offered).order_by("id"))
    assert [(e.from_status, e.to_status) for e in events] == [
        ("ASSIGNED", "ACCEPTED"),
        ("ACCEPTED", "PICKED_UP"),
        ("PICKED_UP", "DELIVERED"),
    ]
    assert all(e.actor_id == rider.user_id and e.rider_id == rider.pk for e in events)
    assert (events[-1].lat, events[-1].lon) == (AT_DROP["lat"], AT_DROP["lon"])
    assert app.get(MINE).json()["results"] == []


def test_delivered_with_a_photo_sent_as_multipart(app, picked_up):
    response = app.post(status_url(picked_up), {"status": "DELIVERED", "photo": jpeg(), **AT_DROP}, format="multipart")

    assert response.status_code == 200, response.content
    picked_up.refresh_from_db()
    assert picked_up.proof_method == ProofMethod.PHOTO
    assert picked_up.proof_photo.name.startswith(f"proof/{picked_up.pk}/")
    with picked_up.proof_photo.open("rb") as stored:
        assert stored.read(3) == b"\xff\xd8\xff"


def test_a_photo_taken_during_the_trip_proves_delivery(app, picked_up):
    photo = jpeg(taken_at=exif_time(timezone.now() - timedelta(minutes=5)))
    response = app.post(status_url(picked_up), {"status": "DELIVERED", "photo": photo, **AT_DROP}, format="multipart")
    assert response.status_code == 200, response.content


def test_a_photo_taken_before_the_trip_is_422_photo_outside_trip(app, picked_up):
    photo = jpeg(taken_at=exif_time(timezone.now() - timedelta(days=2)))

    response = app.post(status_url(picked_up), {"status": "DELIVERED", "photo": photo, **AT_DROP}, format="multipart")

    assert_error(response, 422, "photo_outside_trip")
    picked_up.refresh_from_db()
    assert (picked_up.status, picked_up.proof_photo.name) == (OrderStatus.PICKED_UP, "")


def test_a_wrong_otp_is_422(app, picked_up):
    wrong = "0000" if picked_up.delivery_otp != "0000" else "1111"
    response = app.post(status_url(picked_up), {"status": "DELIVERED", "otp": wrong, **AT_DROP}, format="json")
    assert_error(response, 422, "wrong_otp")
    picked_up.refresh_from_db()
    assert picked_up.status == OrderStatus.PICKED_UP


def test_delivered_without_proof_is_422_proof_required(app, picked_up):
    assert_error(
        app.post(status_url(picked_up), {"status": "DELIVERED", **AT_DROP}, format="json"), 422, "proof_required"
    )


def test_delivered_far_from_the_drop_is_422_too_far_from_drop(app, picked_up):
    response = app.post(
        status_url(picked_up), {"status": "DELIVERED", "otp": picked_up.delivery_otp, **AWAY}, format="json"
    )
    error = assert_error(response, 422, "too_far_from_drop")
    assert "m from the drop" in error["message"]


def test_a_photo_over_5_mb_is_413(app, picked_up):
    oversize = io.BytesIO(b"\xff\xd8\xff\xe0" + b"\x00" * (5 * 1024 * 1024))
    oversize.name = "big.jpg"

    response = app.post(
        status_url(picked_up), {"status": "DELIVERED", "photo": oversize, **AT_DROP}, format="multipart"
    )

    assert_error(response, 413, "photo_too_large")


@pytest.mark.parametrize(
    ("content", "name"), [(b"%PDF-1.4 not a photo", "proof.pdf"), (b"MZ\x90\x00 an executable", "proof.jpg")]
)
def test_a_file_that_is_no_image_is_415(app, picked_up, content, name):
    upload = io.BytesIO(content)
    upload.name = name
    response = app.post(status_url(picked_up), {"status": "DELIVERED", "photo": upload, **AT_DROP}, format="multipart")
    assert_error(response, 415, "unsupported_file_type")


def test_an_illegal_step_is_409_naming_the_current_status(app, offered):
    error = assert_error(
        app.post(status_url(offered), {"status": "PICKED_UP"}, format="json"), 409, "illegal_transition"
    )
    assert "ASSIGNED" in error["message"]
    offered.refresh_from_db()
    assert offered.status == OrderStatus.ASSIGNED


def test_a_step_after_delivery_is_409(app, rider, city):
    order = DeliveredOrderFactory(city=city, rider=rider)
    error = assert_error(
        app.post(status_url(order), {"status": "FAILED", "reason": "OTHER"}, format="json"), 409, "illegal_transition"
    )
    assert "DELIVERED" in error["message"]


def test_repeating_the_current_status_answers_the_order_unchanged(app, picked_up):
    response = app.post(status_url(picked_up), {"status": "PICKED_UP"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "PICKED_UP"
    assert not OrderEvent.objects.filter(order=picked_up).exists()


def test_accepting_an_expired_offer_is_409_offer_expired(app, rider, city):
    order = AssignedOrderFactory(city=city, rider=rider)
    past = timezone.now() - timedelta(minutes=5)
    OrderOfferFactory(order=order, offered_at=past, expires_at=past + timedelta(seconds=60))
    assert_error(app.post(status_url(order), {"status": "ACCEPTED"}, format="json"), 409, "offer_expired")


def test_failed_needs_a_reason_code(app, picked_up):
    assert_error(app.post(status_url(picked_up), {"status": "FAILED"}, format="json"), 422, "reason_required")

    response = app.post(status_url(picked_up), {"status": "FAILED", "reason": "CUSTOMER_UNAVAILABLE"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "FAILED"
    picked_up.refresh_from_db()
    assert picked_up.failure_reason == "CUSTOMER_UNAVAILABLE"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "CANCELLED"}, "status"),
        ({"status": "DELIVERED", "lat": 95, "lon": 77.0}, "lat"),
        ({"status": "FAILED", "reason": "BORED"}, "reason"),
        ({"status": "DELIVERED", "otp": "1234567"}, "otp"),
        ({"status": "DELIVERED", "photo": "not a file"}, "photo"),
        ({}, "status"),
    ],
)
def test_bad_input_is_400_on_the_field(app, picked_up, payload, field):
    error = assert_error(app.post(status_url(picked_up), payload, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {field}


def test_a_position_needs_both_lat_and_lon(app, picked_up):
    response = app.post(status_url(picked_up), {"status": "PICKED_UP", "lat": 12.9}, format="json")
    assert assert_error(response, 400, "invalid_input")["message"] == "Send both lat and lon, or neither."


def test_steps_accept_a_form_without_a_photo_too(app, offered):
    response = app.post(status_url(offered), {"status": "ACCEPTED", "lat": "", "lon": ""}, format="multipart")
    assert response.status_code == 200, response.content


# --- declining an offer ----------------------------------------------------------------------------------------


def test_a_rider_declines_an_offer_and_no_longer_has_the_order(app, rider, offered):
    response = app.post(reject_url(offered))

    assert response.status_code == 204, response.content
    offer = offered.offers.get(rider=rider)
    assert offer.status == OfferStatus.REJECTED
    offered.refresh_from_db()
    assert offered.rider_id != rider.pk
    assert app.get(MINE).json()["results"] == []
    assert_error(app.post(status_url(offered), {"status": "ACCEPTED"}, format="json"), 404, "not_found")


def test_declining_an_order_already_accepted_is_404(app, rider, city):
    order = AcceptedOrderFactory(city=city, rider=rider)
    assert_error(app.post(reject_url(order)), 404, "not_found")
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED
