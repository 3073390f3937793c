"""Schemathesis over the API's own OpenAPI schema: no 5xx, every status documented, every response conforms.

The schema is fetched from ``/api/schema/`` of the WSGI application at import time (no database needed),
and every generated request goes to that application in-process, against the test database of the test
that runs it. Each operation gets one test (``schema.parametrize()``); each runs Schemathesis's coverage
cases (boundary and invalid values, missing fields, wrong content types, other HTTP methods) and a
bounded, derandomized Hypothesis run (positive and negative data), and checks every response:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: every status is documented for the operation;
- ``content_type_conformance``: the body is in a documented media type;
- ``response_schema_conformance``: the body matches the documented schema (the one error shape too);
- ``response_headers_conformance``: documented headers are there (``X-Response-Time`` always,
  ``Retry-After`` on a 429).

``test_rider_api`` calls as an approved rider (``Authorization: Token <key>`` through Schemathesis's
auth config), and the anonymous sign-up and sign-in. ``test_partner_api`` calls the partner order endpoints
as a partner (a member of the partners group). ``test_other_callers`` calls every endpoint but sign-up and
sign-in as everyone else: no token, a generated (invalid) one, a staff user (no rider: 403 on the driver
endpoints, every order on the partner ones), and a rider whose KYC is pending and who has no vehicle (422
on duty, 404 on vehicle).

Generation is steered towards success paths a random string never reaches (``flatmap_*`` hooks): a
valid new mobile, the city and a strong password for sign-up, the rider's real credentials for sign-in,
existing document ids (own and another rider's) for the document detail, existing order ids (the
partner's orders in every status, the rider's offered and picked-up ones, another partner's) for every order
path, and for order intake the city and fresh references. Schemathesis itself sends
realistic file samples (PNG, JPEG, ZIP, ...) to the multipart upload, so uploads are created, refused by type
and refused as duplicates. The database is not reset between examples: sign-ups use up mobiles, the
rider goes on and off duty, documents pile up, and each of those answers (409, idempotent duty) is
documented. Stored idempotent responses are dropped before each example, and a POST sent with an
``Idempotency-Key`` is sent twice, so the replayed response is checked as well.

Schemathesis never sends what only a hostile or careless client does, so a few answers are checked
directly against the schema: 406 (an ``Accept`` without JSON) on every operation, 413 and a JSON body
nested too deep for the parser (400) on every body, and 429 with the rate limits tripped on purpose (the
other tests raise them, so that 429 does not crowd out the rest). One more test guards drf-spectacular's
shared enum components, and the NUL test keeps a 500 that a longer Schemathesis run found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fleet.services import Point, location_points_record
from orders.models import Order
from riders.models import DutyStatus, KycDocument, KycStatus
from tests.fleet.factories import CityFactory, VehicleFactory
from tests.orders.factories import (
    AssignedOrderFactory,
    DeliveredOrderFactory,
    OrderFactory,
    OrderOfferFactory,
    PartnerFactory,
    PickedUpOrderFactory,
)
from tests.riders.factories import KycDocumentFactory, RiderFactory, UserFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"
DOCUMENT = "/api/v1/driver/kyc-documents/{document_id}/"
ORDERS = "/api/v1/orders/"

# Fixed keys and credentials: the schemas below are built at import time, before any test makes the users.
RIDER_KEY = "5c4e3a7d0b1f2e6a9c8d7b6a5f4e3d2c1b0a9f8e"
PENDING_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
STAFF_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233"
PARTNER_KEY = "9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3"
RIDER_MOBILE = "+919876500001"
PASSWORD = "lantern-quartz-8812"

APP = WSGIHandler()


def _load(auth: dict[str, Any]) -> Any:
    config = schemathesis.Config.from_dict({"auth": auth} if auth else {})
    return schemathesis.openapi.from_wsgi("/api/schema/", APP, config=config)


# Loaded at import, not through ``schemathesis.pytest.from_fixture``: with pytest 9.2 the lazy loader fails
# on ``request.node._nodeid`` (schemathesis 4.32.5), and the schema needs no database anyway.
rider_schema = _load({"openapi": {"tokenAuth": {"api_key": f"Token {RIDER_KEY}"}}})
caller_schema = _load({}).exclude(path_regex=r"^/api/v1/auth/")
partner_schema = _load({"openapi": {"tokenAuth": {"api_key": f"Token {PARTNER_KEY}"}}}).include(
    path_regex=r"^/api/v1/orders/"
)

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    # The database fixture is set up once per operation on purpose; sign-ups hash passwords (slow).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@rider_schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Half the sign-ups valid and new, half the sign-ins with the rider's real credentials."""
    path = context.operation.path if context.operation else None
    if not isinstance(body, dict) or path not in {SIGNUP, TOKEN}:
        return st.just(body)
    if path == SIGNUP:
        valid = st.integers(6_000_000_000, 9_999_999_999).map(
            lambda n: {**body, "mobile": f"+91{n}", "city": "BLR", "password": PASSWORD}
        )
    else:
        mobiles = st.sampled_from([RIDER_MOBILE, RIDER_MOBILE[3:], f"0{RIDER_MOBILE[3:]}"])
        valid = mobiles.map(lambda mobile: {**body, "mobile": mobile, "password": PASSWORD})
    return st.one_of(st.just(body), valid)


@rider_schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    """Document and order ids that exist (the rider's own, and others', which must be a 404) or generated ones."""
    return _existing_ids(context, path_parameters)


def _existing_ids(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    if not context.operation or not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    if context.operation.path == DOCUMENT:
        name, existing = "document_id", sorted(KycDocument.objects.values_list("id", flat=True))
    elif "{order_id}" in context.operation.path:
        name, existing = "order_id", sorted(Order.objects.values_list("id", flat=True))
    else:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.sampled_from(existing).map(lambda pk: {**path_parameters, name: pk}),
    )


@partner_schema.hook("flatmap_path_parameters")
def partner_order_ids(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    """Order ids that exist: the partner's own in every status, another partner's (a 404), or generated ones."""
    return _existing_ids(context, path_parameters)


@partner_schema.hook("flatmap_body")
def partner_order_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Half the pushed orders in the real city with a fresh reference and valid amounts, so some are created
    (201) and, when Schemathesis repeats one, answered from the store (200)."""
    if not context.operation or context.operation.path != ORDERS or not isinstance(body, dict):
        return st.just(body)
    valid = st.integers(0, 10**9).map(
        lambda n: {**body, "external_ref": f"ST-{n}", "city": "BLR", "delivery_fee": "45.00", "cod_amount": "0.00"}
    )
    return st.one_of(st.just(body), valid)


@caller_schema.hook("flatmap_headers")
def caller_headers(context: Any, headers: Any) -> st.SearchStrategy[Any]:
    """No token, the generated one, a staff user's, or a pending rider's without a vehicle."""
    headers = dict(headers or {})
    no_token = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return st.sampled_from(
        [
            no_token,
            headers,
            {**no_token, "Authorization": f"Token {STAFF_KEY}"},
            {**no_token, "Authorization": f"Token {PENDING_KEY}"},
        ]
    )


@pytest.fixture(autouse=True)
def api_world(db: None, settings: Any) -> Iterator[None]:
    """Who the generated requests meet: city BLR, riders, documents, staff, a partner and its orders; high rate
    limits."""
    settings.API_RATE_LIMITS = {
        "anonymous": "100000/m",
        "driver": "100000/m",
        "login": "100000/m",
        "partner": "100000/m",
    }
    city = CityFactory(code="BLR", name="Bengaluru")
    rider = RiderFactory(
        mobile=RIDER_MOBILE,
        city=city,
        kyc_status=KycStatus.APPROVED,
        kyc_reviewed_at=timezone.now(),
        duty_status=DutyStatus.AUTO_OFF,  # moved off duty by hours-of-service enforcement
        vehicle=VehicleFactory(city=city),
    )
    rider.user.set_password(PASSWORD)
    rider.user.save(update_fields=["password"])
    Token.objects.create(user=rider.user, key=RIDER_KEY)
    KycDocumentFactory(rider=rider)
    pending = RiderFactory(city=city)
    Token.objects.create(user=pending.user, key=PENDING_KEY)
    KycDocumentFactory(rider=pending)
    Token.objects.create(user=UserFactory(is_staff=True), key=STAFF_KEY)
    partner = PartnerFactory()
    Token.objects.create(user=partner, key=PARTNER_KEY)
    # Orders in the states each order operation acts on: the partner's to read, assign, cancel, rate and
    # track; the rider's offered and picked-up ones to step and decline; another partner's, a 404.
    now = timezone.now()
    OrderFactory(city=city, created_by=partner)
    DeliveredOrderFactory(
        city=city, created_by=partner, rider=rider, picked_up_at=now - timedelta(minutes=30), delivered_at=now
    )
    PickedUpOrderFactory(city=city, created_by=partner, rider=rider)
    OrderOfferFactory(order=AssignedOrderFactory(city=city, created_by=partner, rider=rider))
    OrderFactory(city=city, created_by=PartnerFactory())
    location_points_record(
        rider_id=rider.pk, points=[Point(now - timedelta(minutes=m), 12.97 + m / 1000, 77.59) for m in (25, 15, 5)]
    )

    # The WSGI handler closes "old" connections around each request; in a test that would close the
    # connection holding the test's transaction. Django's test client disconnects them the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _call_and_validate(case: Any) -> None:
    """One example: no stored idempotent responses, the call, and with an Idempotency-Key the same call again.

    Stored responses are dropped first, so a key that Schemathesis repeats in every coverage case does not
    turn them all into 409s. The repeated call is answered from the store (``Idempotent-Replayed``) or
    anew; either way it must conform too.
    """
    cache.delete_pattern("idem:*", itersize=1000)  # type: ignore[attr-defined]  # SCAN 1,000 keys a call, not 10
    case.call_and_validate(checks=CHECKS)
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if case.method == "POST" and isinstance(key, str) and key.strip():
        case.call_and_validate(checks=CHECKS)


@rider_schema.parametrize()
@settings(SETTINGS, max_examples=50)
def test_rider_api(case: Any) -> None:
    _call_and_validate(case)


@partner_schema.parametrize()
@settings(SETTINGS, max_examples=30)
def test_partner_api(case: Any) -> None:
    _call_and_validate(case)


@caller_schema.parametrize()
@settings(SETTINGS, max_examples=15)
def test_other_callers(case: Any) -> None:
    _call_and_validate(case)


OPERATIONS = [result.ok() for result in rider_schema.get_all_operations()]
BODY_OPERATIONS = [operation for operation in OPERATIONS if operation.method.upper() in {"POST", "PUT", "PATCH"}]
RIDER_AUTH = {"Authorization": f"Token {RIDER_KEY}"}
PARTNER_AUTH = {"Authorization": f"Token {PARTNER_KEY}"}


def _case(operation: Any, **headers: str) -> Any:
    """A call the operation lets through to its body: the partner's token on partner paths, else the rider's."""
    path_parameters = {parameter.name: 1 for parameter in operation.path_parameters}
    auth = PARTNER_AUTH if operation.path.startswith(ORDERS) else RIDER_AUTH
    return operation.Case(path_parameters=path_parameters, headers={**auth, **headers})


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_accept_without_json_is_a_documented_406(operation: Any) -> None:
    case = _case(operation, Accept="text/html")
    response = case.call()
    assert response.status_code == 406, response.text
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda operation: operation.label)
def test_body_over_the_upload_limit_is_a_documented_413(operation: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    case = _case(operation, **{"Content-Type": "application/json"})
    response = case.call(data=json.dumps({"message": "x" * 2048}).encode())
    assert response.status_code == 413, response.text
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    ("path", "method", "kwargs"),
    [
        (TOKEN, "POST", {"body": {"mobile": RIDER_MOBILE, "password": "wrong-password-1"}}),
        (SIGNUP, "POST", {"body": {"mobile": "x", "name": "A", "city": "BLR", "password": "p"}}),
        ("/api/v1/driver/profile/", "GET", {"headers": {"Authorization": f"Token {RIDER_KEY}"}}),
    ],
    ids=["login", "anonymous", "driver"],
)
def test_rate_limited_answers(settings: Any, path: str, method: str, kwargs: dict[str, Any]) -> None:
    settings.API_RATE_LIMITS = {"anonymous": "1/m", "driver": "1/m", "login": "1/m"}
    case = rider_schema[path][method].Case(**kwargs)
    # A few calls, not exactly two: another test run sharing the Redis may wipe the counter in between.
    statuses = []
    for _ in range(5):
        response = case.call()
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    case.validate_response(response, checks=CHECKS)


def test_signup_with_a_nul_in_the_city_code_is_a_400() -> None:
    """Found by ``test_rider_api`` with more examples: the city lookup sent the NUL to PostgreSQL (500)."""
    body = {"mobile": "+919812300000", "name": "Asha", "city": "BLR\x00", "password": PASSWORD}
    rider_schema[SIGNUP]["POST"].Case(body=body).call_and_validate(checks=CHECKS)


def test_deeply_nested_json_is_a_documented_400() -> None:
    """Valid JSON, 100 000 arrays deep: Python's parser gives up with a RecursionError, which must not be a 500."""
    body = b"[" * 100_000 + b"]" * 100_000
    for operation in BODY_OPERATIONS:
        case = _case(operation, **{"Content-Type": "application/json"})
        response = case.call(data=body)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == 400, (operation.label, response.text)


def _enum_values(document: dict[str, Any], schema: dict[str, Any]) -> set[Any] | None:
    """The values an enum property allows, through ``$ref``, ``allOf`` and ``oneOf``; None if it is no enum."""
    if "items" in schema:
        return _enum_values(document, schema["items"])
    if "$ref" in schema:
        return _enum_values(document, document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "enum" in schema:
        return {value for value in schema["enum"] if value not in ("", None)}
    found = [_enum_values(document, part) for key in ("allOf", "oneOf", "anyOf") for part in schema.get(key, [])]
    values = [value for value in found if value is not None]
    return set().union(*values) if values else None


def test_enum_components_keep_the_choices_of_every_field() -> None:
    """drf-spectacular moves choices into shared ``...Enum`` components named after the field (or component and
    field); two choice sets that end up with one name silently become one. Every field keeps its own choices."""
    with patched_settings({"POSTPROCESSING_HOOKS": []}):
        inline = SchemaGenerator().get_schema(request=None, public=True)
    served = rider_schema.raw_schema
    checked = []
    for name, component in inline["components"]["schemas"].items():
        for field, field_schema in component.get("properties", {}).items():
            choices = _enum_values(inline, field_schema)
            if choices is not None:
                assert _enum_values(served, served["components"]["schemas"][name]["properties"][field]) == choices, (
                    f"{name}.{field}"
                )
                checked.append(f"{name}.{field}")
    assert "RiderOut.duty_status" in checked
