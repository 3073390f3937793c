"""Riders go on and off duty within their hours of service, and raise SOS alerts dispatchers hear at once."""

import json
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from riders.models import DutyEndReason, DutyLog, DutyStatus, EmergencyAlert, KycStatus, Rider, RiderStatus
from tests.fleet.factories import CityFactory
from tests.riders.factories import DutyLogFactory, RiderFactory

pytestmark = pytest.mark.django_db

DUTY = "/api/v1/driver/duty/"
HOS = "/api/v1/driver/hos/"
EMERGENCY = "/api/v1/driver/emergency/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def client_of(rider: Rider) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rider.user).key}")
    return client


def local_midnight():
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def rider() -> Rider:
    return RiderFactory(kyc_status=KycStatus.APPROVED)


@pytest.fixture
def client(rider) -> APIClient:
    return client_of(rider)


# --- duty ----------------------------------------------------------------------------------------


def test_duty_on_puts_an_approved_rider_on_duty_and_opens_a_duty_log(client, rider):
    response = client.post(DUTY, {"status": "ON"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["duty_status"] == "ON"
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.ON
    log = DutyLog.objects.get(rider=rider)
    assert log.ended_at is None
    assert log.started_at == rider.duty_changed_at


def test_duty_on_when_already_on_is_200_and_opens_no_second_log(client, rider):
    client.post(DUTY, {"status": "ON"}, format="json")
    response = client.post(DUTY, {"status": "ON"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["duty_status"] == "ON"
    assert DutyLog.objects.filter(rider=rider).count() == 1


def test_duty_off_closes_the_open_duty_log(client, rider):
    client.post(DUTY, {"status": "ON"}, format="json")
    response = client.post(DUTY, {"status": "OFF"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["duty_status"] == "OFF"
    log = DutyLog.objects.get(rider=rider)
    assert log.ended_at is not None
    assert log.end_reason == DutyEndReason.MANUAL
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.OFF


def test_duty_off_when_already_off_is_200_and_writes_nothing(client, rider):
    response = client.post(DUTY, {"status": "OFF"}, format="json")
    assert response.status_code == 200, response.content
    assert not DutyLog.objects.filter(rider=rider).exists()


def test_duty_on_before_kyc_approval_is_422_kyc_not_approved():
    rider = RiderFactory(kyc_status=KycStatus.PENDING)
    assert_error(client_of(rider).post(DUTY, {"status": "ON"}, format="json"), 422, "kyc_not_approved")
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.OFF
    assert not DutyLog.objects.exists()


def test_duty_on_after_kyc_rejection_is_422_kyc_not_approved():
    rider = RiderFactory(kyc_status=KycStatus.REJECTED, kyc_rejection_reason="Blurry licence")
    assert_error(client_of(rider).post(DUTY, {"status": "ON"}, format="json"), 422, "kyc_not_approved")


def test_duty_on_while_suspended_is_422_rider_not_active():
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, status=RiderStatus.SUSPENDED, suspension_reason="Complaints")
    assert_error(client_of(rider).post(DUTY, {"status": "ON"}, format="json"), 422, "rider_not_active")
    assert not DutyLog.objects.exists()


def test_duty_on_at_the_daily_hours_limit_is_422_hos_limit_reached(client, rider):
    now = timezone.now()
    DutyLogFactory(rider=rider, started_at=local_midnight(), ended_at=now, end_reason=DutyEndReason.MANUAL)
    worked_today = int((now - local_midnight()).total_seconds() // 60)

    with override_settings(HOS_DAILY_LIMIT_MINUTES=worked_today):
        assert_error(client.post(DUTY, {"status": "ON"}, format="json"), 422, "hos_limit_reached")
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.OFF
    assert DutyLog.objects.filter(rider=rider).count() == 1


def test_duty_on_after_sixty_hours_this_week_is_422_hos_limit_reached(client, rider):
    six_days_ago = timezone.now() - timedelta(days=6)
    for shift in range(6):  # 10 h on, 10 h off: 60 h on duty, all inside the last 7 days
        started = six_days_ago + timedelta(hours=20 * shift)
        DutyLogFactory(
            rider=rider, started_at=started, ended_at=started + timedelta(hours=10), end_reason=DutyEndReason.MANUAL
        )
    assert_error(client.post(DUTY, {"status": "ON"}, format="json"), 422, "hos_limit_reached")


def test_duty_on_with_hours_left_is_allowed_after_earlier_shifts(client, rider):
    DutyLogFactory(
        rider=rider,
        started_at=timezone.now() - timedelta(days=2, hours=8),
        ended_at=timezone.now() - timedelta(days=2),
        end_reason=DutyEndReason.MANUAL,
    )
    assert client.post(DUTY, {"status": "ON"}, format="json").status_code == 200


@pytest.mark.parametrize("status", ["AUTO_OFF", "on", "", None, 1])
def test_duty_with_a_status_other_than_on_or_off_is_400_on_status(client, status):
    error = assert_error(client.post(DUTY, {"status": status}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"status"}


def test_duty_without_a_status_is_400_on_status(client):
    error = assert_error(client.post(DUTY, {}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"status"}


# --- hours of service ----------------------------------------------------------------------------


def test_hos_of_a_new_rider_is_zero_used_and_the_full_day_left(client):
    response = client.get(HOS)
    assert response.status_code == 200
    assert response.json() == {
        "minutes_today": 0,
        "minutes_7d": 0,
        "daily_limit_minutes": 12 * 60,
        "weekly_limit_minutes": 60 * 60,
        "minutes_left": 12 * 60,
    }


def test_hos_counts_only_todays_part_of_a_shift_across_midnight_and_an_open_shift_until_now(client, rider):
    now = timezone.now()
    midnight = local_midnight()
    # Whole minutes that fit between midnight and now, so the expected numbers hold at any time of day.
    third = int((now - midnight).total_seconds() // 60) // 3
    crossing_end = midnight + timedelta(minutes=min(30, third))
    open_minutes = min(20, third)
    DutyLogFactory(  # yesterday 23:15 to just after midnight
        rider=rider, started_at=midnight - timedelta(minutes=45), ended_at=crossing_end, end_reason="MANUAL"
    )
    DutyLogFactory(  # three days ago, two hours
        rider=rider,
        started_at=now - timedelta(days=3),
        ended_at=now - timedelta(days=3) + timedelta(hours=2),
        end_reason="MANUAL",
    )
    # Across the start of the 7-day window: its last 30.5 minutes count. The half minute absorbs the moment
    # between building these rows and the request, which the open shift below gains.
    DutyLogFactory(
        rider=rider,
        started_at=now - timedelta(days=7, minutes=60),
        ended_at=now - timedelta(days=7) + timedelta(minutes=30, seconds=30),
        end_reason="MANUAL",
    )
    DutyLogFactory(  # eight days ago: outside every window
        rider=rider,
        started_at=now - timedelta(days=8),
        ended_at=now - timedelta(days=8) + timedelta(hours=5),
        end_reason="MANUAL",
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=open_minutes))  # on duty right now
    today = min(30, third) + open_minutes

    body = client.get(HOS).json()

    assert body["minutes_today"] == today
    assert body["minutes_7d"] == 45 + today + 120 + 30
    assert body["minutes_left"] == 12 * 60 - today


def test_hos_minutes_left_follow_the_weekly_limit_when_it_is_closer(client, rider):
    started = timezone.now() - timedelta(days=2)
    DutyLogFactory(rider=rider, started_at=started, ended_at=started + timedelta(hours=5), end_reason="MANUAL")
    with override_settings(HOS_WEEKLY_LIMIT_MINUTES=6 * 60):
        body = client.get(HOS).json()
    assert body["weekly_limit_minutes"] == 360
    assert body["minutes_7d"] == 300
    assert body["minutes_left"] == 60


def test_hos_minutes_left_never_go_below_zero(client, rider):
    started = timezone.now() - timedelta(days=1)
    DutyLogFactory(rider=rider, started_at=started, ended_at=started + timedelta(hours=2), end_reason="MANUAL")
    with override_settings(HOS_WEEKLY_LIMIT_MINUTES=60):
        assert client.get(HOS).json()["minutes_left"] == 0


# --- SOS -----------------------------------------------------------------------------------------


def test_sos_is_stored_with_the_riders_city_and_answers_201_with_the_alert_id(client, rider):
    response = client.post(EMERGENCY, {"lat": 12.97, "lon": 77.59, "message": "Accident on ORR"}, format="json")

    assert response.status_code == 201, response.content
    alert = EmergencyAlert.objects.get(pk=response.json()["id"])
    assert (alert.rider, alert.city, alert.lat, alert.lon) == (rider, rider.city, 12.97, 77.59)
    assert alert.message == "Accident on ORR"
    assert response.json()["status"] == "OPEN"


def test_sos_without_a_position_is_still_stored(client):
    response = client.post(EMERGENCY, {}, format="json")
    assert response.status_code == 201, response.content
    assert EmergencyAlert.objects.get(pk=response.json()["id"]).lat is None


def test_sos_is_published_to_the_city_dispatchers_after_commit(django_capture_on_commit_callbacks, listen):
    city = CityFactory(code=f"S{uuid.uuid4().hex[:8].upper()}")  # a group no other test run listens on
    rider = RiderFactory(city=city, kyc_status=KycStatus.APPROVED)
    group = f"dispatch.{city.code}"
    dispatchers = listen(group)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_of(rider).post(EMERGENCY, {"lat": 12.9, "lon": 77.6, "message": "Help"}, format="json")
        assert dispatchers.messages(group, wait_s=0.2) == []  # nothing before commit
    message = dispatchers.next(group, timeout=5)

    assert response.status_code == 201, response.content
    assert len(callbacks) == 1
    assert json.loads(json.dumps(message)) == message
    assert message["event"] == "sos.raised"
    assert message["payload"]["alert_id"] == response.json()["id"]
    assert message["payload"]["rider_id"] == rider.pk
    assert message["payload"]["rider_mobile"] == rider.mobile
    assert (message["payload"]["lat"], message["payload"]["lon"]) == (12.9, 77.6)
    assert message["payload"]["message"] == "Help"


def test_sos_with_only_a_latitude_is_400(client):
    error = assert_error(client.post(EMERGENCY, {"lat": 12.9}, format="json"), 400, "invalid_input")
    assert "lat and lon" in error["message"]
    assert not EmergencyAlert.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"lat": 91, "lon": 77.6}, "lat"), ({"lat": 12.9, "lon": "east"}, "lon"), ({"message": "x" * 501}, "message")],
    ids=["lat-out-of-range", "lon-not-a-number", "message-too-long"],
)
def test_sos_with_a_bad_field_is_400_naming_it(client, body, field):
    error = assert_error(client.post(EMERGENCY, body, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {field}
    assert not EmergencyAlert.objects.exists()
