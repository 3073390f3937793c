"""Partners push orders idempotently and follow them; partners and ops assign, cancel and rate them over the API."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import OfferStatus, Order, OrderEvent, OrderOffer, OrderStatus
from riders.models import DutyStatus, KycStatus, Rating, Rider
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.orders.factories import (
    AssignedOrderFactory,
    DeliveredOrderFactory,
    OrderFactory,
    OrderOfferFactory,
    PartnerFactory,
    PickedUpOrderFactory,
)
from tests.riders.factories import DutyLogFactory, RatingFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
LOCATIONS = "/api/v1/driver/locations/"
PICKUP = (12.9716, 77.5946)
DROP = (12.9352, 77.6245)


def order_url(order_id: int, action: str = "") -> str:
    return f"{ORDERS}{order_id}/{action + '/' if action else ''}"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def body(ref: str = "QB-1001", **changes) -> dict:
    values = {
        "external_ref": ref,
        "city": "BLR",
        "pickup": {"lat": PICKUP[0], "lon": PICKUP[1], "address": "MG Road, Bengaluru"},
        "drop": {"lat": DROP[0], "lon": DROP[1], "address": "Koramangala, Bengaluru"},
        "delivery_fee": "45.00",
        "cod_amount": "250.50",
        "metadata": {"items": [{"sku": "A1", "qty": 2}], "customer": "Asha"},
    }
    return {**values, **changes}


def on_duty_rider(city, **kwargs) -> Rider:
    rider = RiderFactory(
        city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now(), **kwargs
    )
    DutyLogFactory(rider=rider, started_at=rider.duty_changed_at)
    return rider


def place(capture, rider: Rider, lat: float, lon: float) -> None:
    """The rider's phone reports a position; after commit it is the rider's live position on the city's map."""
    point = {"lat": lat, "lon": lon, "recorded_at": timezone.now().isoformat()}
    with capture(execute=True):
        response = client_of(rider.user).post(LOCATIONS, {"points": [point]}, format="json")
    assert response.status_code == 202, response.content


@pytest.fixture
def city():
    return CityFactory(code="BLR", name="Bengaluru")


@pytest.fixture
def partner():
    return PartnerFactory()


@pytest.fixture
def api(partner) -> APIClient:
    return client_of(partner)


@pytest.fixture
def ops() -> APIClient:
    return client_of(UserFactory(username="ops-1", is_staff=True))


# --- intake --------------------------------------------------------------------------------------------


def test_a_partner_pushes_an_order_and_gets_201_with_it(api, partner, city):
    response = api.post(ORDERS, body(), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    order = Order.objects.get()
    assert data["id"] == order.pk
    assert data["external_ref"] == "QB-1001"
    assert data["city"] == "BLR"
    assert data["status"] == "CREATED"
    assert data["rider"] is None
    assert data["pickup"] == {"lat": PICKUP[0], "lon": PICKUP[1], "address": "MG Road, Bengaluru"}
    assert data["drop"] == {"lat": DROP[0], "lon": DROP[1], "address": "Koramangala, Bengaluru"}
    assert (data["delivery_fee"], data["cod_amount"]) == ("45.00", "250.50")
    assert data["metadata"] == {"items": [{"sku": "A1", "qty": 2}], "customer": "Asha"}
    assert data["delivery_otp"] == order.delivery_otp
    assert order.created_by == partner
    [event] = data["events"]
    assert event["from_status"] is None
    assert event["to_status"] == "CREATED"
    assert event["actor"] == {"kind": "partner", "id": partner.pk, "name": partner.username}
    assert data["offers"] == []
    assert data["rating"] is None


def test_a_new_orders_answer_is_what_reading_it_back_gives_without_reading_it_back(api, city):
    """The 201 is built from what the intake wrote (no second read of the order, its events and offers): it
    must say exactly what the order's own page says right after."""
    with CaptureQueriesContext(connection) as queries:
        created = api.post(ORDERS, body(metadata={"nested": {"list": [1, 2.5, None]}, "note": "é"}), format="json")
    assert created.status_code == 201, created.content
    read = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in read if 'FROM "orders_order"' in sql or 'FROM "orders_orderevent"' in sql]

    assert created.json() == api.get(order_url(created.json()["id"])).json()


@pytest.mark.parametrize(
    ("fee", "paise"), [("45.00", 4500), ("45.5", 4550), ("0", 0), ("1234567.89", 123456789), (" 7.05 ", 705)]
)
def test_amounts_are_decimal_strings_kept_in_paise(api, city, fee, paise):
    response = api.post(ORDERS, body(delivery_fee=fee, cod_amount="0.01"), format="json")

    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert (order.delivery_fee_paise, order.cod_amount_paise) == (paise, 1)
    assert response.json()["delivery_fee"] == f"{paise // 100}.{paise % 100:02d}"


def test_cod_amount_and_metadata_may_be_left_out(api, city):
    response = api.post(ORDERS, {k: v for k, v in body().items() if k not in {"cod_amount", "metadata"}}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["cod_amount"] == "0.00"
    assert Order.objects.get().metadata == {}


def test_the_city_code_is_taken_in_any_case(api, city):
    response = api.post(ORDERS, body(city="blr"), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["city"] == "BLR"


def test_the_same_ref_with_the_same_body_answers_200_with_the_first_order(api, city):
    first = api.post(ORDERS, body(), format="json")
    again = api.post(ORDERS, body(), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1
    assert OrderEvent.objects.count() == 1


def test_the_same_ref_with_another_body_is_409_and_changes_nothing(api, city):
    api.post(ORDERS, body(), format="json")

    error = assert_error(api.post(ORDERS, body(delivery_fee="46.00"), format="json"), 409, "external_ref_conflict")

    assert "QB-1001" in error["message"]
    assert Order.objects.get().delivery_fee_paise == 4500


def test_the_same_ref_pushed_by_another_partner_is_409_not_their_order(api, city):
    api.post(ORDERS, body(), format="json")

    response = client_of(PartnerFactory()).post(ORDERS, body(), format="json")

    assert_error(response, 409, "external_ref_conflict")
    assert "delivery_otp" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_of_one_ref_make_one_order(settings):
    settings.ORDER_AUTO_ASSIGN = False  # these commit: no assignment task queued on the broker for them
    CityFactory(code="BLR")
    tokens = [Token.objects.create(user=PartnerFactory()).key] * 6
    barrier = threading.Barrier(len(tokens))
    statuses: list[int] = []

    def push(key: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        try:
            barrier.wait()
            statuses.append(client.post(ORDERS, body(), format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=push, args=(key,)) for key in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 5 + [201]
    assert Order.objects.count() == 1
    assert OrderEvent.objects.count() == 1


def test_an_idempotency_key_replays_the_first_answer(api, city):
    first = api.post(ORDERS, body(), format="json", HTTP_IDEMPOTENCY_KEY="push-1")
    again = api.post(ORDERS, body(), format="json", HTTP_IDEMPOTENCY_KEY="push-1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.count() == 1


def test_an_idempotency_key_reused_with_another_body_is_409(api, city):
    api.post(ORDERS, body(), format="json", HTTP_IDEMPOTENCY_KEY="push-1")
    response = api.post(ORDERS, body("QB-1002"), format="json", HTTP_IDEMPOTENCY_KEY="push-1")
    assert_error(response, 409, "idempotency_key_reused")


def test_ops_may_push_an_order_too(ops, city):
    response = ops.post(ORDERS, body(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["events"][0]["actor"]["kind"] == "staff"


@pytest.mark.parametrize("fee", ["45.123", "-1.00", "abc", "1e3", "", "NaN", "45.", "12345678901.00", 45.5, 45, None])
def test_a_bad_amount_is_400_on_its_field(api, city, fee):
    error = assert_error(api.post(ORDERS, body(delivery_fee=fee), format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"delivery_fee"}
    assert not Order.objects.exists()


def test_metadata_larger_than_the_limit_is_400_on_metadata(api, city, settings):
    settings.ORDER_METADATA_MAX_BYTES = 1024
    metadata = {"note": "x" * 1024}

    error = assert_error(api.post(ORDERS, body(metadata=metadata), format="json"), 400, "invalid_input")

    assert set(error["fields"]) == {"metadata"}
    assert "1024" in error["fields"]["metadata"][0]


def test_metadata_at_the_default_limit_is_taken_and_one_byte_more_is_not(api, city):
    filler = 16 * 1024 - len(json.dumps({"note": ""}, separators=(",", ":")))
    assert api.post(ORDERS, body("QB-1", metadata={"note": "é" * (filler // 2)}), format="json").status_code == 201
    too_big = api.post(ORDERS, body("QB-2", metadata={"note": "x" * (filler + 1)}), format="json")
    assert set(assert_error(too_big, 400, "invalid_input")["fields"]) == {"metadata"}


@pytest.mark.parametrize("metadata", [[1, 2], "text", 5, {"note": "a\x00b"}, {"a\x00": 1}])
def test_metadata_that_is_no_object_or_has_a_nul_is_400(api, city, metadata):
    error = assert_error(api.post(ORDERS, body(metadata=metadata), format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"metadata"}


@pytest.mark.parametrize(
    ("place", "where"),
    [
        ({"lat": 91, "lon": 77.59, "address": "x"}, "lat"),
        ({"lat": 12.97, "lon": -180.5, "address": "x"}, "lon"),
        ({"lat": "north", "lon": 77.59, "address": "x"}, "lat"),
        ({"lat": 12.97, "lon": 77.59, "address": ""}, "address"),
        ({"lat": 12.97, "address": "x"}, "lon"),
    ],
)
def test_bad_coordinates_are_400_on_the_place(api, city, place, where):
    error = assert_error(api.post(ORDERS, body(pickup=place), format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"pickup"}
    assert set(error["fields"]["pickup"]) == {where}


@pytest.mark.parametrize("code", ["ZZZ", "BLR\x00", "B" * 40])
def test_an_unknown_city_is_400_on_city(api, city, code):
    error = assert_error(api.post(ORDERS, body(city=code), format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"city"}


def test_an_inactive_city_is_400_on_city(api):
    CityFactory(code="BLR", is_active=False)
    assert set(assert_error(api.post(ORDERS, body(), format="json"), 400, "invalid_input")["fields"]) == {"city"}


def test_missing_fields_are_400_naming_each(api, city):
    error = assert_error(api.post(ORDERS, {"external_ref": "QB-1"}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"city", "pickup", "drop", "delivery_fee"}


# --- who may call --------------------------------------------------------------------------------------


def test_no_token_is_401(city):
    assert_error(APIClient().post(ORDERS, body(), format="json"), 401, "not_authenticated")
    assert_error(APIClient().get(ORDERS), 401, "not_authenticated")


@pytest.mark.parametrize("action", ["", "assign", "cancel", "rating", "track"])
def test_a_rider_token_is_403_on_partner_endpoints(city, action):
    rider_api = client_of(RiderFactory(city=city).user)
    order = OrderFactory(city=city)
    method = rider_api.get if action in {"", "track"} else rider_api.post
    assert_error(method(order_url(order.pk, action)), 403, "permission_denied")
    assert_error(rider_api.post(ORDERS, body(), format="json"), 403, "permission_denied")
    assert_error(rider_api.get(ORDERS), 403, "permission_denied")


def test_an_account_that_is_neither_staff_nor_partner_is_403(city):
    assert_error(client_of(UserFactory()).post(ORDERS, body(), format="json"), 403, "permission_denied")


def test_the_partner_group_is_a_setting(city, settings):
    in_partners = client_of(PartnerFactory())
    settings.PARTNER_GROUP = "3pl"

    assert_error(in_partners.get(ORDERS), 403, "permission_denied")
    assert client_of(PartnerFactory()).get(ORDERS).status_code == 200  # made a member of "3pl"


# --- reading -------------------------------------------------------------------------------------------


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_partner_lists_only_the_orders_it_created_newest_first(api, partner, city):
    mine = [OrderFactory(city=city, created_by=partner) for _ in range(3)]
    OrderFactory(city=city, created_by=PartnerFactory())
    OrderFactory(city=city)

    assert _ids(api.get(ORDERS)) == [order.pk for order in reversed(mine)]


def test_ops_list_every_order(ops, city, partner):
    orders = [OrderFactory(city=city, created_by=partner), OrderFactory(city=city)]
    assert sorted(_ids(ops.get(ORDERS))) == sorted(order.pk for order in orders)


def test_the_list_filters_by_status_city_rider_and_creation_time(ops, city):
    other_city = CityFactory(code="HYD")
    created = OrderFactory(city=city)
    assigned = AssignedOrderFactory(city=city)
    elsewhere = OrderFactory(city=other_city)
    Order.objects.filter(pk=created.pk).update(created_at=timezone.now() - timedelta(days=3))

    assert _ids(ops.get(ORDERS, {"status": "ASSIGNED"})) == [assigned.pk]
    assert sorted(_ids(ops.get(ORDERS, {"city": "blr"}))) == sorted([created.pk, assigned.pk])
    assert _ids(ops.get(ORDERS, {"rider": assigned.rider_id})) == [assigned.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert sorted(_ids(ops.get(ORDERS, {"created_after": since}))) == sorted([assigned.pk, elsewhere.pk])
    assert _ids(ops.get(ORDERS, {"created_before": since})) == [created.pk]
    assert _ids(ops.get(ORDERS, {"city": "HYD", "status": "CREATED"})) == [elsewhere.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"city": "ZZZ"}, "city"),
        ({"status": "LOST"}, "status"),
        ({"rider": "x"}, "rider"),
        ({"created_after": "y"}, "created_after"),
    ],
)
def test_a_bad_filter_is_400_on_the_parameter(ops, city, params, field):
    error = assert_error(ops.get(ORDERS, params), 400, "invalid_input")
    assert set(error["fields"]) == {field}


def test_the_list_pages_with_a_cursor(ops, city):
    orders = [OrderFactory(city=city) for _ in range(5)]
    first = ops.get(ORDERS, {"page_size": 2}).json()
    second = ops.get(first["next"]).json()
    assert [row["id"] for row in first["results"] + second["results"]] == [o.pk for o in reversed(orders)][:4]


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ORDERS)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["partner", "ops"])
def test_the_list_costs_the_same_queries_for_any_number_of_orders(api, ops, partner, city, who):
    client = api if who == "partner" else ops

    def add(count: int) -> None:
        for _ in range(count):
            AssignedOrderFactory(city=CityFactory(), created_by=partner)

    add(2)
    few = _list_queries(client)
    add(8)
    assert _list_queries(client) == few
    assert few <= 4  # token, partner group (partners only), page; no COUNT(*)


def test_an_order_shows_its_history_with_actor_position_and_time_and_its_offers(api, partner, city):
    response = api.post(ORDERS, body(), format="json")
    order = Order.objects.get(pk=response.json()["id"])
    rider = RiderFactory(city=city, name="Asha Rao")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.ASSIGNED, rider=rider, assigned_at=timezone.now())
    OrderEvent.objects.create(order=order, from_status="CREATED", to_status="ASSIGNED", rider=rider)
    OrderEvent.objects.create(
        order=order, from_status="ASSIGNED", to_status="ACCEPTED", rider=rider, actor=rider.user, lat=12.97, lon=77.59
    )
    OrderOfferFactory(order=order, rider=rider, status=OfferStatus.ACCEPTED, distance_m=840)

    data = api.get(order_url(order.pk)).json()

    assert data["status"] == "ASSIGNED"
    assert data["rider"] == {"id": rider.pk, "name": "Asha Rao"}
    steps = [(e["from_status"], e["to_status"], e["actor"]["kind"], e["position"]) for e in data["events"]]
    assert steps == [
        (None, "CREATED", "partner", None),
        ("CREATED", "ASSIGNED", "system", None),
        ("ASSIGNED", "ACCEPTED", "rider", {"lat": 12.97, "lon": 77.59}),
    ]
    assert data["events"][2]["actor"] == {"kind": "rider", "id": rider.user_id, "name": "Asha Rao"}
    assert all(e["occurred_at"] for e in data["events"])
    [offer] = data["offers"]
    assert (offer["rider"]["id"], offer["status"], offer["distance_m"]) == (rider.pk, "ACCEPTED", 840)


def test_the_detail_costs_the_same_queries_however_long_the_history(api, partner, city):
    order = OrderFactory(city=city, created_by=partner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(order_url(order.pk)).status_code == 200
        return len(captured)

    few = queries()
    for _ in range(5):
        rider = RiderFactory(city=city)
        OrderEvent.objects.create(order=order, to_status="CREATED", rider=rider, actor=rider.user)
        OrderOffer.objects.create(
            order=order,
            rider=rider,
            status=OfferStatus.EXPIRED,
            offered_at=timezone.now(),
            expires_at=timezone.now() + timedelta(seconds=60),
        )
    assert queries() == few


def test_another_partners_order_is_404_everywhere(api, city):
    theirs = DeliveredOrderFactory(city=city, created_by=PartnerFactory())

    assert_error(api.get(order_url(theirs.pk)), 404, "not_found")
    assert_error(api.get(order_url(theirs.pk, "track")), 404, "not_found")
    assert_error(api.post(order_url(theirs.pk, "assign"), {}, format="json"), 404, "not_found")
    assert_error(api.post(order_url(theirs.pk, "cancel"), {"reason": "x"}, format="json"), 404, "not_found")
    assert_error(api.post(order_url(theirs.pk, "rating"), {"stars": 1}, format="json"), 404, "not_found")
    assert not Rating.objects.exists()


def test_an_order_that_does_not_exist_is_404(ops):
    assert_error(ops.get(order_url(999_999)), 404, "not_found")


# --- assignment ----------------------------------------------------------------------------------------


def test_assign_to_a_named_rider_offers_the_order_to_that_rider(api, partner, city, django_capture_on_commit_callbacks):
    rider = on_duty_rider(city)
    place(django_capture_on_commit_callbacks, rider, *PICKUP)
    order = OrderFactory(city=city, created_by=partner)

    response = api.post(order_url(order.pk, "assign"), {"rider_id": rider.pk}, format="json")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "ASSIGNED"
    assert data["rider"]["id"] == rider.pk
    [offer] = data["offers"]
    assert (offer["rider"]["id"], offer["status"]) == (rider.pk, "PENDING")
    assert data["events"][-1]["to_status"] == "ASSIGNED"


def test_assign_with_no_rider_named_picks_the_nearest_available_one(ops, city, django_capture_on_commit_callbacks):
    near, far = on_duty_rider(city), on_duty_rider(city)
    place(django_capture_on_commit_callbacks, far, PICKUP[0] + 0.02, PICKUP[1])
    place(django_capture_on_commit_callbacks, near, PICKUP[0] + 0.002, PICKUP[1])
    order = OrderFactory(city=city)

    response = ops.post(order_url(order.pk, "assign"), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["rider"]["id"] == near.pk
    order.refresh_from_db()
    assert (order.status, order.rider_id) == (OrderStatus.ASSIGNED, near.pk)


def test_assign_with_nobody_available_is_422(ops, city):
    order = OrderFactory(city=city)
    assert_error(ops.post(order_url(order.pk, "assign"), {}, format="json"), 422, "no_rider_available")
    order.refresh_from_db()
    assert order.status == OrderStatus.CREATED


def test_assign_to_a_rider_off_duty_is_422(ops, city):
    order = OrderFactory(city=city)
    rider = RiderFactory(city=city, kyc_status=KycStatus.APPROVED)
    response = ops.post(order_url(order.pk, "assign"), {"rider_id": rider.pk}, format="json")
    assert response.status_code == 422, response.content


def test_assign_a_delivered_order_is_409_naming_its_status(ops, city):
    order = DeliveredOrderFactory(city=city)
    error = assert_error(ops.post(order_url(order.pk, "assign"), {}, format="json"), 409, "illegal_transition")
    assert "DELIVERED" in error["message"]


@pytest.mark.parametrize("rider_id", ["x", 0, -3, 1.5])
def test_assign_with_a_bad_rider_id_is_400(ops, city, rider_id):
    order = OrderFactory(city=city)
    error = assert_error(
        ops.post(order_url(order.pk, "assign"), {"rider_id": rider_id}, format="json"), 400, "invalid_input"
    )
    assert set(error["fields"]) == {"rider_id"}


# --- cancel --------------------------------------------------------------------------------------------


def test_cancel_before_pickup_cancels_with_the_reason_and_withdraws_the_offer(api, partner, city):
    offer = OrderOfferFactory(order=AssignedOrderFactory(city=city, created_by=partner))

    response = api.post(order_url(offer.order_id, "cancel"), {"reason": "Customer changed their mind"}, format="json")

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["status"], data["cancel_reason"]) == ("CANCELLED", "Customer changed their mind")
    assert data["closed_at"]
    assert data["events"][-1]["note"] == "Customer changed their mind"
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN


def test_cancel_after_pickup_is_409_naming_the_current_status(api, partner, city):
    order = PickedUpOrderFactory(city=city, created_by=partner)

    error = assert_error(
        api.post(order_url(order.pk, "cancel"), {"reason": "Late"}, format="json"), 409, "illegal_transition"
    )

    assert "PICKED_UP" in error["message"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PICKED_UP


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 256}])
def test_cancel_needs_a_reason(api, partner, city, payload):
    order = OrderFactory(city=city, created_by=partner)
    error = assert_error(api.post(order_url(order.pk, "cancel"), payload, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"reason"}


# --- rating --------------------------------------------------------------------------------------------


def test_a_delivered_order_is_rated_once_with_201(api, partner, city):
    order = DeliveredOrderFactory(city=city, created_by=partner)

    response = api.post(order_url(order.pk, "rating"), {"stars": 4, "comment": "  Polite, on time "}, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["order_id"], data["rider_id"], data["stars"], data["comment"]) == (
        order.pk,
        order.rider_id,
        4,
        "Polite, on time",
    )
    rating = Rating.objects.get()
    assert (rating.rider_id, rating.rated_by) == (order.rider_id, partner)
    assert api.get(order_url(order.pk)).json()["rating"]["stars"] == 4


def test_rating_before_delivery_is_409_not_delivered(api, partner, city):
    order = PickedUpOrderFactory(city=city, created_by=partner)
    assert_error(api.post(order_url(order.pk, "rating"), {"stars": 5}, format="json"), 409, "not_delivered")
    assert not Rating.objects.exists()


def test_rating_twice_is_409_already_rated(api, partner, city):
    order = DeliveredOrderFactory(city=city, created_by=partner)
    RatingFactory(order=order, stars=5)

    assert_error(api.post(order_url(order.pk, "rating"), {"stars": 1}, format="json"), 409, "already_rated")
    assert Rating.objects.get().stars == 5


@pytest.mark.parametrize("stars", [0, 6, -1, "five", None, 2.5])
def test_stars_go_from_1_to_5(api, partner, city, stars):
    order = DeliveredOrderFactory(city=city, created_by=partner)
    error = assert_error(api.post(order_url(order.pk, "rating"), {"stars": stars}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"stars"}


@pytest.mark.parametrize("stars", [1, 5])
def test_one_and_five_stars_are_taken(api, partner, city, stars):
    order = DeliveredOrderFactory(city=city, created_by=partner)
    assert api.post(order_url(order.pk, "rating"), {"stars": stars}, format="json").status_code == 201


def test_a_post_to_an_order_path_with_no_number_is_a_json_404_not_a_csrf_page(api):
    response = api.post(f"{ORDERS}abc/cancel/", {"reason": "x"}, format="json")
    assert_error(response, 404, "not_found")
