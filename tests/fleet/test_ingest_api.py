"""Riders upload GPS in batches: valid points are stored once, in one statement; invalid ones are reported by index."""

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fleet.management.commands.simulate import ApiSink, SinkUnavailable
from fleet.models import LocationLog
from fleet.services import Point
from riders.models import DutyStatus, KycStatus, Rider
from tests.api import client_of
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

LOCATIONS = "/api/v1/driver/locations/"
CONTRACT_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(autouse=True)
def _live_settings(settings):
    settings.LIVE_POSITION_TTL_S = 900
    settings.RIDER_STALE_AFTER_S = 600


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def point(at: datetime, lat: float = 12.9716, lon: float = 77.5946, **extra) -> dict:
    return {"lat": lat, "lon": lon, "recorded_at": at.isoformat(), **extra}


@pytest.fixture
def ago():
    """``ago(seconds)``: a time that many seconds before this test's one "now" (whole seconds, UTC)."""
    now = timezone.now().astimezone(UTC).replace(microsecond=0)
    return lambda seconds: now - timedelta(seconds=seconds)


def stored(rider: Rider) -> list[LocationLog]:
    return list(LocationLog.objects.filter(rider=rider).order_by("recorded_at"))


@pytest.fixture
def rider() -> Rider:
    return RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now())


@pytest.fixture
def client(rider) -> APIClient:
    return client_of(rider.user)


def test_a_valid_batch_is_stored_and_answered_202_with_its_counts(client, rider, ago):
    batch = [
        point(ago(30), speed=22.5, heading=90, accuracy=4.5, battery=81),
        point(ago(20), lat=12.9721, lon=77.5951),
        point(ago(10), speed=None, heading=None, accuracy=None, battery=None),
    ]
    response = client.post(LOCATIONS, {"points": batch}, format="json")

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    first, second, third = stored(rider)
    assert (first.speed_kmh, first.heading_deg, first.accuracy_m, first.battery_pct) == (22.5, 90, 4.5, 81)
    assert (second.lat, second.lon) == (12.9721, 77.5951)
    assert (third.speed_kmh, third.heading_deg, third.accuracy_m, third.battery_pct) == (None, None, None, None)
    assert first.recorded_at == ago(30)


@pytest.mark.parametrize(
    ("bad", "code", "field"),
    [
        ({"lat": 90.5}, "out_of_range", "lat"),
        ({"lon": -180.01}, "out_of_range", "lon"),
        ({"lat": "12.97"}, "wrong_type", "lat"),
        ({"lon": True}, "wrong_type", "lon"),
        ({"lat": None}, "required", "lat"),
        ({"lat": 10**400}, "out_of_range", "lat"),
        ({"recorded_at": None}, "required", "recorded_at"),
        ({"recorded_at": 1714557600}, "wrong_type", "recorded_at"),
        ({"recorded_at": "yesterday at noon"}, "invalid_time", "recorded_at"),
        ({"recorded_at": "2024-05-01T10:00:00"}, "time_zone_missing", "recorded_at"),
        ({"recorded_at": "2024-05-01"}, "time_zone_missing", "recorded_at"),
        ({"recorded_at": "x" * 10_000}, "invalid_time", "recorded_at"),
        ({"speed": -0.1}, "out_of_range", "speed"),
        ({"speed": "fast"}, "wrong_type", "speed"),
        ({"heading": 360}, "out_of_range", "heading"),
        ({"heading": -1}, "out_of_range", "heading"),
        ({"accuracy": -3}, "out_of_range", "accuracy"),
        ({"battery": 100.5}, "out_of_range", "battery"),
        ({"battery": [80]}, "wrong_type", "battery"),
    ],
)
def test_a_mixed_batch_stores_the_valid_points_and_reports_the_invalid_one_by_index(
    client, rider, bad, code, field, ago
):
    good_before, good_after = point(ago(30)), point(ago(10))
    invalid = {**point(ago(20)), **bad}

    response = client.post(LOCATIONS, {"points": [good_before, invalid, good_after]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": [{"index": 1, "code": code, "field": field}]}
    assert [p.recorded_at for p in stored(rider)] == [ago(30), ago(10)]


def test_a_point_that_is_no_object_is_reported_without_a_field(client, rider, ago):
    response = client.post(LOCATIONS, {"points": [[12.97, 77.59], "here", None, point(ago(5))]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == [{"index": i, "code": "not_an_object", "field": None} for i in range(3)]
    assert response.json()["accepted"] == 1


def test_times_are_checked_against_the_clock_and_the_retention_window(client, rider, settings):
    settings.LOCATION_RETENTION_MONTHS = 6
    now = timezone.now()
    batch = [
        point(now + timedelta(minutes=1, seconds=50)),  # a phone a little ahead: fine
        point(now + timedelta(minutes=2, seconds=10)),
        point(now - timedelta(days=31 * 7)),
        point(now - timedelta(days=30 * 5)),  # old but kept by the log: fine
    ]
    response = client.post(LOCATIONS, {"points": batch}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["rejected"] == [
        {"index": 1, "code": "in_future", "field": "recorded_at"},
        {"index": 2, "code": "too_old", "field": "recorded_at"},
    ]
    assert response.json()["accepted"] == 2


def test_a_time_with_an_offset_is_the_same_instant_as_in_utc(client, rider, ago):
    at = ago(60)
    in_india = at.astimezone(timezone.get_fixed_timezone(330))
    response = client.post(
        LOCATIONS,
        {"points": [point(at), {**point(at), "recorded_at": in_india.isoformat()}, point(at).copy()]},
        format="json",
    )
    assert response.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert [p.recorded_at for p in stored(rider)] == [at]


def test_a_z_suffix_and_fractional_seconds_are_accepted(client, rider, ago):
    at = ago(15).replace(microsecond=123456)
    recorded_at = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    response = client.post(LOCATIONS, {"points": [{"lat": 1.5, "lon": 2.5, "recorded_at": recorded_at}]}, format="json")
    assert response.json()["accepted"] == 1
    assert stored(rider)[0].recorded_at == at


def test_heading_and_battery_are_rounded_to_whole_numbers(client, rider, ago):
    batch = [
        point(ago(3), heading=12.4, battery=99.5),
        point(ago(2), heading=359.6, battery=0.2),
        point(ago(1), heading=180.5, battery=100),
    ]
    assert client.post(LOCATIONS, {"points": batch}, format="json").json()["accepted"] == 3
    assert [(p.heading_deg, p.battery_pct) for p in stored(rider)] == [(12, 100), (0, 0), (181, 100)]


def test_a_replayed_batch_is_accepted_0_and_stores_no_duplicate_points(client, rider, ago):
    batch = {"points": [point(ago(40 - i), lat=12.97 + i / 1000) for i in range(20)]}

    first = client.post(LOCATIONS, batch, format="json")
    replay = client.post(LOCATIONS, batch, format="json")

    assert first.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    assert replay.status_code == 202, replay.content
    assert replay.json() == {"accepted": 0, "duplicates": 20, "rejected": []}
    assert LocationLog.objects.filter(rider=rider).count() == 20


def test_a_batch_overlapping_an_earlier_one_stores_only_the_new_points(client, rider, ago):
    client.post(LOCATIONS, {"points": [point(ago(s)) for s in (50, 40, 30)]}, format="json")
    response = client.post(LOCATIONS, {"points": [point(ago(s)) for s in (30, 20, 10)]}, format="json")
    assert response.json() == {"accepted": 2, "duplicates": 1, "rejected": []}
    assert LocationLog.objects.filter(rider=rider).count() == 5


def test_a_batch_is_stored_with_one_insert(client, rider, ago):
    batch = {"points": [point(ago(600 - i), lat=12.9 + i / 10_000) for i in range(500)]}
    batch["points"][7]["lat"] = 123  # an invalid point changes nothing

    with CaptureQueriesContext(connection) as queries:
        response = client.post(LOCATIONS, batch, format="json")

    assert response.json()["accepted"] == 499
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]  # the test's own
    inserts = [sql for sql in statements if sql.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    assert "fleet_locationlog" in inserts[0]
    # the token with its user, rider and city in one query, then the INSERT: nothing grows with the batch
    assert len(statements) == 2, statements


def test_exactly_500_points_are_taken(client, rider, ago):
    batch = {"points": [point(ago(600 - i)) for i in range(500)]}
    assert client.post(LOCATIONS, batch, format="json").json()["accepted"] == 500


def test_more_than_500_points_are_413_batch_too_large_and_nothing_is_stored(client, rider, ago):
    points = [point(ago(600 - i)) for i in range(501)]
    points[0] = "not even a point"  # counted, not looked at

    assert_error(client.post(LOCATIONS, {"points": points}, format="json"), 413, "batch_too_large")
    assert not LocationLog.objects.filter(rider=rider).exists()


def test_more_than_500_points_are_413_even_off_duty(ago):
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.OFF)
    points = [point(ago(600 - i)) for i in range(501)]
    assert_error(client_of(rider.user).post(LOCATIONS, {"points": points}, format="json"), 413, "batch_too_large")


@pytest.mark.parametrize(
    "body",
    [
        {"points": []},
        {},
        {"points": None},
        {"points": {"lat": 1}},
        {"points": "12.9,77.5"},
        [{"lat": 1.0, "lon": 2.0, "recorded_at": "2024-05-01T10:00:00Z"}],
    ],
    ids=["empty", "missing", "null", "object", "string", "bare-list"],
)
def test_a_body_without_a_list_of_points_is_400(client, rider, body):
    error = assert_error(client.post(LOCATIONS, body, format="json"), 400, "invalid_input")
    if isinstance(body, dict):
        assert set(error["fields"]) == {"points"}
    assert not LocationLog.objects.filter(rider=rider).exists()


@pytest.mark.parametrize("duty_status", [DutyStatus.OFF, DutyStatus.AUTO_OFF])
def test_a_rider_not_on_duty_is_422_not_on_duty_and_nothing_is_stored(duty_status, ago):
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=duty_status)
    response = client_of(rider.user).post(LOCATIONS, {"points": [point(ago(5))]}, format="json")
    assert_error(response, 422, "not_on_duty")
    assert not LocationLog.objects.filter(rider=rider).exists()


def test_without_a_token_it_is_401(ago):
    response = APIClient().post(LOCATIONS, {"points": [point(ago(5))]}, format="json")
    assert_error(response, 401, "not_authenticated")


def test_with_an_unknown_token_it_is_401(ago):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert_error(client.post(LOCATIONS, {"points": [point(ago(5))]}, format="json"), 401, "authentication_failed")


def test_a_staff_token_without_a_rider_is_403(ago):
    staff = UserFactory(is_staff=True)
    response = client_of(staff).post(LOCATIONS, {"points": [point(ago(5))]}, format="json")
    assert_error(response, 403, "permission_denied")
    assert not LocationLog.objects.exists()


def test_an_idempotency_key_is_not_needed_and_not_used(client, rider, ago):
    batch = {"points": [point(ago(5))]}
    first = client.post(LOCATIONS, batch, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post(LOCATIONS, batch, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.json()["accepted"], second.json()["accepted"]) == (1, 0)
    assert "Idempotent-Replayed" not in second.headers


# --- the documented contract ------------------------------------------------------------------------


@pytest.fixture
def documented_api():
    """The API's own OpenAPI schema (Schemathesis), calling the WSGI app in-process within this test's transaction.

    ``tests/test_api_schema.py`` covers every operation, but its rider is off duty: this checks the 202.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_a_202_with_rejected_points_matches_the_documented_schema(documented_api, rider, ago):
    token = Token.objects.create(user=rider.user).key
    batch = [point(ago(3)), {"lat": 1}, "nope", point(ago(1), heading=359.9)]
    case = documented_api[LOCATIONS]["POST"].Case(
        body={"points": batch}, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}
    )
    response = case.call()
    assert response.status_code == 202, response.text
    assert len(response.json()["rejected"]) == 2
    case.validate_response(response, checks=CONTRACT_CHECKS)


# --- the simulator posts through the API --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_simulators_api_sink_posts_batches_with_the_riders_token(live_server, settings):
    settings.LIVE_POSITION_TTL_S = 900
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now())
    now = timezone.now()
    points = [
        Point(recorded_at=now - timedelta(seconds=700 - i), lat=12.97, lon=77.59, speed_kmh=20.0) for i in range(700)
    ]
    sink = ApiSink(base_url=live_server.url)
    try:
        assert sink.post(rider_id=rider.pk, points=points) == 700  # two posts: the API takes 500 at most
        assert sink.post(rider_id=rider.pk, points=points[-10:]) == 0  # a retried batch stores nothing twice
    finally:
        sink.close()
    assert LocationLog.objects.filter(rider=rider).count() == 700


def test_the_api_sink_keeps_a_batch_it_could_not_deliver():
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now())
    sink = ApiSink(base_url="http://127.0.0.1:1")  # nothing listens there
    with pytest.raises(SinkUnavailable):
        sink.post(rider_id=rider.pk, points=[Point(recorded_at=timezone.now(), lat=1.0, lon=1.0)])
