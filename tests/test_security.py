"""Issue 9's security tests: one rider never reaches another's data through any driver endpoint; hostile and
oversize values in every filter parameter are answered, never executed nor a 500; a revoked token is dead."""

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order
from riders import services as rider_services
from riders.models import Rider
from tests.api import client_of
from tests.orders.factories import AssignedOrderFactory, PartnerFactory
from tests.riders.factories import KycDocumentFactory, RiderFactory, UserFactory
from tests.wallet.factories import WithdrawalRequestFactory, earn

pytestmark = pytest.mark.django_db


@pytest.fixture
def victim():
    """A rider with something behind every driver endpoint: an offered order, a KYC document, ledger entries
    and a withdrawal."""
    rider = RiderFactory()
    earn(rider.pk, 900_00)
    return {
        "rider": rider,
        "order": AssignedOrderFactory(rider=rider, city=rider.city),
        "document": KycDocumentFactory(rider=rider),
        "withdrawal": WithdrawalRequestFactory(rider=rider),
    }


# --- IDOR: every driver endpoint, as another rider ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/driver/kyc-documents/{document}/"),
        ("post", "/api/v1/driver/orders/{order}/status/"),
        ("post", "/api/v1/driver/orders/{order}/reject/"),
    ],
)
def test_another_riders_object_is_a_404(victim, method, path):
    intruder = client_of(RiderFactory(city=victim["rider"].city).user)
    url = path.format(document=victim["document"].pk, order=victim["order"].pk)
    body = {"status": "ACCEPTED", "lat": 12.97, "lon": 77.59} if method == "post" else None

    response = getattr(intruder, method)(url, body, format="json")

    assert response.status_code == 404, response.content
    order = Order.objects.get(pk=victim["order"].pk)
    assert (order.status, order.rider_id) == ("ASSIGNED", victim["rider"].pk)


@pytest.mark.parametrize(
    ("path", "victims_ids"),
    [
        ("/api/v1/driver/orders/", lambda v: {v["order"].pk}),
        ("/api/v1/driver/kyc-documents/", lambda v: {v["document"].pk}),
        ("/api/v1/driver/withdrawals/", lambda v: {v["withdrawal"].pk}),
        ("/api/v1/driver/wallet/entries/", lambda v: set(v["rider"].ledger_entries.values_list("pk", flat=True))),
    ],
)
def test_another_riders_lists_hold_nothing_of_the_victims(victim, path, victims_ids):
    intruder = client_of(RiderFactory().user)
    response = intruder.get(path, {"rider": victim["rider"].pk, "rider_id": victim["rider"].pk})
    assert response.status_code == 200, response.content
    items = response.json()["results"] if isinstance(response.json(), dict) else response.json()
    assert {item["id"] for item in items}.isdisjoint(victims_ids(victim))


def test_another_riders_wallet_is_never_shown(victim):
    intruder = client_of(RiderFactory().user)
    for path in ("/api/v1/driver/wallet/", "/api/v1/driver/wallet/statement/"):
        response = intruder.get(path, {"rider": victim["rider"].pk})
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code in (200, 400), (path, body)
        assert b"900.00" not in body, path


# --- Hostile values in every filter parameter ---------------------------------------------------------------

HOSTILE = [
    "' OR '1'='1",
    "1; DROP TABLE orders_order; --",
    "1 UNION SELECT password FROM auth_user --",
    "x" * 10_000,
    "\x00",
    "%00'",
    "9" * 40,
    "-1",
    "😀" * 200,
]


def _filter_parameters() -> list[tuple[str, str]]:
    """(path, parameter) for every query parameter of every GET in the OpenAPI schema whose path has no id."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        found += [(path, p["name"]) for p in get.get("parameters", []) if p["in"] == "query"]
    return found


FILTERS = _filter_parameters()


def test_the_schema_lists_the_filters_this_test_walks():
    assert ("/api/v1/orders/", "city") in FILTERS
    assert ("/api/v1/orders/", "created_after") in FILTERS
    assert len(FILTERS) >= 10


@pytest.mark.parametrize(("path", "parameter"), FILTERS)
def test_hostile_values_in_a_filter_are_answered_never_executed(path, parameter, staff_client_api):
    rider = RiderFactory()
    AssignedOrderFactory(rider=rider, city=rider.city)
    client = client_of(rider.user) if path.startswith("/api/v1/driver/") else staff_client_api
    orders, users = Order.objects.count(), Rider.objects.count()

    for value in HOSTILE:
        response = client.get(path, {parameter: value})
        assert response.status_code in (200, 400, 404, 422), (path, parameter, value[:20], response.content[:300])
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}

    assert (Order.objects.count(), Rider.objects.count()) == (orders, users)  # nothing dropped or changed


@pytest.fixture
def staff_client_api():
    return client_of(UserFactory(is_staff=True))


# --- Token revocation ---------------------------------------------------------------------------------------


def test_a_signed_out_token_is_refused():
    rider = RiderFactory()
    client = client_of(rider.user)
    assert client.get("/api/v1/driver/profile/").status_code == 200

    assert client.delete("/api/v1/auth/token/").status_code == 204

    refused = client.get("/api/v1/driver/profile/")
    assert refused.status_code == 401
    assert not Token.objects.filter(user=rider.user).exists()


def test_signing_out_needs_a_token():
    assert APIClient().delete("/api/v1/auth/token/").status_code == 401


def test_a_token_deleted_by_staff_in_admin_is_refused(staff_client):
    rider = RiderFactory()
    client = client_of(rider.user)
    # The admin lists tokens by their user (DRF's TokenProxy); deleting one is how staff revoke it.
    response = staff_client.post(reverse("admin:authtoken_tokenproxy_delete", args=[rider.user_id]), {"post": "yes"})

    assert response.status_code == 302
    assert not Token.objects.filter(user=rider.user).exists()

    assert client.get("/api/v1/driver/profile/").status_code == 401


def test_suspension_revokes_the_riders_token(admin_user):
    rider = RiderFactory()
    client = client_of(rider.user)

    rider_services.rider_suspend(rider_ids=[rider.pk], actor=admin_user, reason="Fraud")

    assert client.get("/api/v1/driver/profile/").status_code == 401


def test_a_partner_token_revoked_is_refused():
    partner = PartnerFactory()
    client = client_of(partner)
    assert client.get("/api/v1/orders/").status_code == 200
    Token.objects.filter(user=partner).delete()
    assert client.get("/api/v1/orders/").status_code == 401
