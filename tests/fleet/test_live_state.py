"""After a batch commits, the rider's live position moves forward (never back), the city's GEO set finds the rider,
dispatch hears one event per batch, and riders who go off duty leave the map."""

import json
import logging
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from fleet import live, services
from fleet.models import LocationLog
from riders import services as rider_services
from riders.models import DutyLog, DutyStatus, KycStatus, Rider
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

LOCATIONS = "/api/v1/driver/locations/"
NEARBY = "/api/v1/riders/nearby/"
CENTRE = (12.9716, 77.5946)
KM_OF_LATITUDE = 1 / 111.195  # degrees


@pytest.fixture(autouse=True)
def _live_settings(settings):
    settings.LIVE_POSITION_TTL_S = 900
    settings.RIDER_STALE_AFTER_S = 600


@pytest.fixture
def city():
    """A city of its own: its dispatch group is one no other test run listens on."""
    return CityFactory(code=f"L{uuid.uuid4().hex[:8].upper()}", center_lat=CENTRE[0], center_lon=CENTRE[1])


@pytest.fixture
def now() -> datetime:
    return timezone.now().astimezone(UTC).replace(microsecond=0)


def on_duty_rider(city, **kwargs) -> Rider:
    rider = RiderFactory(
        city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=timezone.now(), **kwargs
    )
    DutyLogFactory(rider=rider, started_at=rider.duty_changed_at)
    return rider


def point(at: datetime, lat: float = CENTRE[0], lon: float = CENTRE[1], **extra) -> dict:
    return {"lat": lat, "lon": lon, "recorded_at": at.isoformat(), **extra}


def post_committed(capture, rider: Rider, points: list[dict]):
    """Posts a batch and runs what it left for after commit (the test's transaction never commits)."""
    with capture(execute=True):
        response = client_of(rider.user).post(LOCATIONS, {"points": points}, format="json")
    assert response.status_code == 202, response.content
    return response


def place(capture, rider: Rider, *, km_north: float, at: datetime) -> None:
    post_committed(capture, rider, [point(at, lat=CENTRE[0] + km_north * KM_OF_LATITUDE)])


# --- the live hash and the GEO set -------------------------------------------------------------------


def test_the_newest_point_becomes_the_live_position_and_the_rider_joins_the_city_geo_set_after_commit(
    django_capture_on_commit_callbacks, city, now
):
    rider = on_duty_rider(city)
    batch = [
        point(now - timedelta(seconds=30), lat=12.90, speed=10.0),
        point(now - timedelta(seconds=10), lat=12.92, lon=77.61, speed=31.5),  # the newest, though not last
        point(now - timedelta(seconds=20), lat=12.91),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        client_of(rider.user).post(LOCATIONS, {"points": batch}, format="json")
    assert live.position_get(rider.pk) is None  # nothing before commit
    assert rider.pk not in live.geo_members(city.code)
    assert len(callbacks) == 1
    callbacks[0]()

    position = live.position_get(rider.pk)
    assert position is not None
    assert (position.lat, position.lon, position.speed_kmh) == (12.92, 77.61, 31.5)
    assert position.recorded_at == now - timedelta(seconds=10)
    assert position.city_code == city.code
    assert live.geo_members(city.code) == {rider.pk}
    ttl = get_redis_connection("default").ttl(live.rider_key(rider.pk))
    assert 890 <= ttl <= 900


def test_live_keys_carry_the_cache_key_prefix(settings):
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    assert live.rider_key(7).startswith(f"{prefix}:")
    assert live.geo_key("blr").startswith(f"{prefix}:")
    assert live.geo_key("blr").endswith("live:geo:BLR")


def test_an_older_batch_arriving_late_does_not_move_the_live_position_backwards(
    django_capture_on_commit_callbacks, city, now
):
    rider = on_duty_rider(city)
    post_committed(django_capture_on_commit_callbacks, rider, [point(now - timedelta(seconds=5), lat=12.95)])

    late = [point(now - timedelta(seconds=60 - i), lat=12.80 + i / 100) for i in range(5)]  # buffered offline
    response = post_committed(django_capture_on_commit_callbacks, rider, late)

    assert response.json()["accepted"] == 5  # stored in the log all the same
    position = live.position_get(rider.pk)
    assert (position.lat, position.recorded_at) == (12.95, now - timedelta(seconds=5))
    assert LocationLog.objects.filter(rider=rider).count() == 6


def test_a_newer_batch_moves_the_live_position_forward(django_capture_on_commit_callbacks, city, now):
    rider = on_duty_rider(city)
    post_committed(django_capture_on_commit_callbacks, rider, [point(now - timedelta(seconds=20), lat=12.95)])
    post_committed(django_capture_on_commit_callbacks, rider, [point(now - timedelta(seconds=10), lat=12.96)])
    assert live.position_get(rider.pk).lat == 12.96


def test_concurrent_batches_leave_the_newest_position_whatever_order_they_land_in(city, now):
    """Real threads, one Redis: the compare-and-set is one script, so no interleaving can regress it."""
    rider_id = 424242
    times = [now - timedelta(milliseconds=i) for i in range(200)]
    random.Random(4).shuffle(times)
    barrier = threading.Barrier(8)

    def writer(chunk: list[datetime]) -> None:
        barrier.wait()
        for at in chunk:
            services.live_position_advance(
                rider_id=rider_id,
                city_code=city.code,
                is_on_duty=True,
                point=services.Point(recorded_at=at, lat=10 + (now - at).total_seconds(), lon=77.0),
            )

    threads = [threading.Thread(target=writer, args=(times[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    position = live.position_get(rider_id)
    assert position.recorded_at == now
    assert position.lat == 10.0


def test_a_replayed_batch_publishes_nothing_and_changes_nothing(django_capture_on_commit_callbacks, city, now):
    rider = on_duty_rider(city)
    batch = [point(now - timedelta(seconds=10))]
    post_committed(django_capture_on_commit_callbacks, rider, batch)
    assert (
        services.live_position_advance(
            rider_id=rider.pk,
            city_code=city.code,
            is_on_duty=True,
            point=services.Point(recorded_at=now - timedelta(seconds=10), lat=1.0, lon=1.0),
        )
        is False
    )
    assert live.position_get(rider.pk).lat == CENTRE[0]


def test_a_batch_with_no_valid_point_leaves_nothing_for_after_commit(django_capture_on_commit_callbacks, city, now):
    rider = on_duty_rider(city)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_of(rider.user).post(LOCATIONS, {"points": [{"lat": 99}]}, format="json")
    assert response.json()["accepted"] == 0
    assert callbacks == []


def test_redis_down_after_commit_does_not_fail_the_batch(django_capture_on_commit_callbacks, city, now, caplog):
    rider = on_duty_rider(city)
    client = client_of(rider.user)
    dead = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    with (
        override_settings(CACHES=dead),
        caplog.at_level(logging.WARNING, logger="fleet.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(LOCATIONS, {"points": [point(now - timedelta(seconds=3))]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    assert LocationLog.objects.filter(rider=rider).count() == 1
    assert any("not updated: Redis failed" in record.getMessage() for record in caplog.records)


# --- the dispatch event ------------------------------------------------------------------------------


def test_a_batch_leaves_its_newest_point_pending_for_the_citys_dashboards_and_publishes_nothing_itself(
    django_capture_on_commit_callbacks, city, now, listen
):
    """Ingest only records the rider's newest point in the city's pending hash (in the script that moves the
    live position); ``dispatch.coalesce`` sends it with the city's others as one ``rider.moved`` per flush
    (tests/dispatch/test_consumers.py). Nothing reaches the dispatch group straight from a batch."""
    rider = on_duty_rider(city)
    dispatchers = listen(f"dispatch.{city.code}")

    batch = [point(now - timedelta(seconds=200 - i), lat=12.9 + i / 10_000, heading=90, battery=64) for i in range(200)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_of(rider.user).post(LOCATIONS, {"points": batch}, format="json")
    assert dispatchers.messages(f"dispatch.{city.code}", wait_s=0.3) == []

    assert response.json()["accepted"] == 200
    assert len(callbacks) == 1
    pending = get_redis_connection("default").hgetall(live.pending_key(city.code))
    assert {int(rider_id): json.loads(entry) for rider_id, entry in pending.items()} == {
        rider.pk: {
            "rider_id": rider.pk,
            "lat": 12.9 + 199 / 10_000,
            "lon": CENTRE[1],
            "recorded_at": live.timestamp(now - timedelta(seconds=1)),
            "speed_kmh": None,
            "heading_deg": 90,
            "battery_pct": 64,
        }
    }


# --- nearby riders -----------------------------------------------------------------------------------


@pytest.fixture
def staff_api() -> APIClient:
    return client_of(UserFactory(is_staff=True))


def nearby(client: APIClient, in_city, **params):
    return client.get(NEARBY, {"lat": CENTRE[0], "lon": CENTRE[1], "city": in_city.code, **params})


def test_nearby_answers_on_duty_riders_nearest_first_with_distance_and_last_seen(
    django_capture_on_commit_callbacks, staff_api, city, now
):
    far, near, middle = on_duty_rider(city), on_duty_rider(city), on_duty_rider(city)
    elsewhere = on_duty_rider(CityFactory(code=f"E{uuid.uuid4().hex[:8].upper()}"))
    place(django_capture_on_commit_callbacks, far, km_north=3.0, at=now - timedelta(seconds=40))
    place(django_capture_on_commit_callbacks, near, km_north=0.5, at=now - timedelta(seconds=5))
    place(django_capture_on_commit_callbacks, middle, km_north=-1.2, at=now - timedelta(seconds=20))
    place(django_capture_on_commit_callbacks, elsewhere, km_north=0.1, at=now - timedelta(seconds=5))

    response = nearby(staff_api, city, radius_km=10)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["rider_id"] for r in body] == [near.pk, middle.pk, far.pk]
    assert [r["distance_km"] for r in body] == pytest.approx([0.5, 1.2, 3.0], abs=0.01)
    assert body[0]["name"] == near.name
    assert (body[0]["lat"], body[0]["lon"]) == (pytest.approx(CENTRE[0] + 0.5 * KM_OF_LATITUDE), CENTRE[1])
    assert body[0]["last_seen_s"] == pytest.approx(5, abs=3)
    assert body[2]["last_seen_s"] == pytest.approx(40, abs=3)
    assert set(body[0]) == {"rider_id", "name", "distance_km", "lat", "lon", "recorded_at", "last_seen_s"}


def test_a_nearby_answer_matches_the_documented_schema(django_capture_on_commit_callbacks, city, now):
    rider = on_duty_rider(city)
    place(django_capture_on_commit_callbacks, rider, km_north=0.4, at=now)
    staff_token = Token.objects.create(user=UserFactory(is_staff=True)).key
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        documented = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
        case = documented[NEARBY]["GET"].Case(
            query={"lat": CENTRE[0], "lon": CENTRE[1], "city": city.code, "radius_km": 2},
            headers={"Authorization": f"Token {staff_token}"},
        )
        response = case.call()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert response.status_code == 200, response.text
    assert [r["rider_id"] for r in response.json()] == [rider.pk]
    case.validate_response(response, checks=[response_schema_conformance, status_code_conformance])


def test_nearby_keeps_to_the_radius_and_the_limit(django_capture_on_commit_callbacks, staff_api, city, now):
    riders = [on_duty_rider(city) for _ in range(4)]
    for km, rider in zip([0.2, 0.4, 0.6, 2.5], riders, strict=True):
        place(django_capture_on_commit_callbacks, rider, km_north=km, at=now - timedelta(seconds=5))

    assert [r["rider_id"] for r in nearby(staff_api, city, radius_km=1).json()] == [r.pk for r in riders[:3]]
    assert [r["rider_id"] for r in nearby(staff_api, city, radius_km=5, limit=2).json()] == [r.pk for r in riders[:2]]


def test_nearby_city_codes_are_case_insensitive(django_capture_on_commit_callbacks, staff_api, city, now):
    rider = on_duty_rider(city)
    place(django_capture_on_commit_callbacks, rider, km_north=0.1, at=now)
    response = staff_api.get(NEARBY, {"lat": CENTRE[0], "lon": CENTRE[1], "city": city.code.lower()})
    assert [r["rider_id"] for r in response.json()] == [rider.pk]


def test_a_rider_whose_live_position_expired_is_skipped_and_leaves_the_geo_set(
    django_capture_on_commit_callbacks, staff_api, city, now
):
    kept, expired = on_duty_rider(city), on_duty_rider(city)
    place(django_capture_on_commit_callbacks, kept, km_north=1.0, at=now)
    place(django_capture_on_commit_callbacks, expired, km_north=0.5, at=now)
    get_redis_connection("default").delete(live.rider_key(expired.pk))  # what its TTL does

    assert [r["rider_id"] for r in nearby(staff_api, city).json()] == [kept.pk]
    assert live.geo_members(city.code) == {kept.pk}


def test_a_rider_no_longer_on_duty_is_skipped_and_leaves_the_geo_set(
    django_capture_on_commit_callbacks, staff_api, city, now
):
    """A batch that raced the rider's going off duty can put them back in the set after the removal."""
    kept, gone = on_duty_rider(city), on_duty_rider(city)
    place(django_capture_on_commit_callbacks, kept, km_north=1.0, at=now)
    place(django_capture_on_commit_callbacks, gone, km_north=0.5, at=now)
    Rider.objects.filter(pk=gone.pk).update(duty_status=DutyStatus.OFF)

    assert [r["rider_id"] for r in nearby(staff_api, city).json()] == [kept.pk]
    assert live.geo_members(city.code) == {kept.pk}


def test_nearby_with_nobody_on_duty_is_an_empty_list(staff_api, city):
    response = nearby(staff_api, city)
    assert response.status_code == 200, response.content
    assert response.json() == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 91}, "lat"),
        ({"lon": -181}, "lon"),
        ({"lat": "north"}, "lat"),
        ({"lat": "NaN"}, "lat"),
        ({"radius_km": 50.5}, "radius_km"),
        ({"radius_km": -1}, "radius_km"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"city": "NOWHERE"}, "city"),
        ({"city": ""}, "city"),
    ],
)
def test_nearby_with_bad_parameters_is_400_naming_them(staff_api, city, params, field):
    response = nearby(staff_api, city, **params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_input"
    assert set(response.json()["error"]["fields"]) == {field}


def test_nearby_of_an_inactive_city_is_400(staff_api):
    closed = CityFactory(code=f"X{uuid.uuid4().hex[:8].upper()}", is_active=False)
    assert nearby(staff_api, closed).status_code == 400


def test_nearby_without_a_token_is_401(city):
    response = nearby(APIClient(), city)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_nearby_with_a_rider_token_is_403(city):
    response = nearby(client_of(on_duty_rider(city).user), city)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


# --- going off duty leaves the map -------------------------------------------------------------------


def test_going_off_duty_takes_the_rider_off_the_geo_set_after_commit_and_keeps_the_last_position(
    django_capture_on_commit_callbacks, city, now
):
    rider = on_duty_rider(city)
    place(django_capture_on_commit_callbacks, rider, km_north=0.3, at=now)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_of(rider.user).post("/api/v1/driver/duty/", {"status": "OFF"}, format="json")
    assert response.status_code == 200, response.content
    assert rider.pk in live.geo_members(city.code)  # not before commit
    for callback in callbacks:
        callback()

    assert rider.pk not in live.geo_members(city.code)
    assert live.position_get(rider.pk) is not None  # the dashboard may still show where it was last seen


@pytest.mark.parametrize(
    "take_off",
    [
        lambda rider, staff: rider_services.rider_suspend(rider_ids=[rider.pk], actor=staff, reason="Complaints"),
        lambda rider, staff: rider_services.rider_kyc_reject(rider_ids=[rider.pk], reviewer=staff, reason="Forged"),
        lambda rider, staff: rider_services.riders_hos_enforce(),
    ],
    ids=["suspension", "kyc-rejection", "hours-of-service"],
)
def test_every_way_off_duty_takes_the_rider_off_the_geo_set(django_capture_on_commit_callbacks, city, now, take_off):
    rider = on_duty_rider(city)
    other = on_duty_rider(city)
    place(django_capture_on_commit_callbacks, rider, km_north=0.3, at=now)
    place(django_capture_on_commit_callbacks, other, km_north=0.6, at=now)
    # over the weekly hours-of-service limit (60 h) for the HOS path; the others do not look
    DutyLog.objects.filter(rider=rider).update(started_at=timezone.now() - timedelta(hours=61))

    with django_capture_on_commit_callbacks(execute=True):
        assert take_off(rider, UserFactory(is_staff=True)) == 1

    rider.refresh_from_db()
    assert rider.duty_status != DutyStatus.ON
    assert live.geo_members(city.code) == {other.pk}
