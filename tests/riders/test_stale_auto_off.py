"""On-duty riders whose GPS went silent for RIDER_STALE_AFTER_S are moved to AUTO_OFF, every minute, by Celery Beat."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet import live
from fleet import services as fleet_services
from fleet.services import Point, location_points_record
from riders import services
from riders.models import DutyEndReason, DutyLog, DutyStatus, KycStatus, Rider
from riders.tasks import stale_auto_off_task
from tests.fleet.factories import CityFactory
from tests.riders.factories import DutyLogFactory, RiderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stale_settings(settings):
    settings.RIDER_STALE_AFTER_S = 600
    settings.LIVE_POSITION_TTL_S = 900


def on_duty_since(ago: timedelta, **kwargs) -> Rider:
    started = timezone.now() - ago
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=started, **kwargs)
    DutyLogFactory(rider=rider, started_at=started)
    return rider


def sent_a_point(rider: Rider, ago: timedelta) -> None:
    location_points_record(rider_id=rider.pk, points=[Point(recorded_at=timezone.now() - ago, lat=12.97, lon=77.59)])


def test_a_rider_silent_for_ten_minutes_goes_auto_off_and_the_duty_log_closes_as_stale():
    rider = on_duty_since(timedelta(hours=2))
    sent_a_point(rider, timedelta(minutes=11))
    now = timezone.now()

    assert services.riders_stale_auto_off(now=now) == 1

    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.AUTO_OFF
    assert rider.duty_changed_at == now
    log = DutyLog.objects.get(rider=rider)
    assert (log.ended_at, log.end_reason) == (now, DutyEndReason.STALE)


def test_a_rider_with_a_point_in_the_last_ten_minutes_stays_on_duty():
    rider = on_duty_since(timedelta(hours=2))
    sent_a_point(rider, timedelta(minutes=30))
    sent_a_point(rider, timedelta(minutes=9))

    assert services.riders_stale_auto_off() == 0
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.ON
    assert DutyLog.objects.get(rider=rider).ended_at is None


def test_a_rider_who_never_sent_a_point_counts_from_going_on_duty():
    just_on = on_duty_since(timedelta(minutes=4))
    long_on = on_duty_since(timedelta(minutes=15))

    assert services.riders_stale_auto_off() == 1

    just_on.refresh_from_db()
    long_on.refresh_from_db()
    assert (just_on.duty_status, long_on.duty_status) == (DutyStatus.ON, DutyStatus.AUTO_OFF)


def test_a_rider_back_on_duty_after_a_silence_gets_the_full_window_again():
    rider = on_duty_since(timedelta(minutes=3))
    sent_a_point(rider, timedelta(hours=1))  # from an earlier shift

    assert services.riders_stale_auto_off() == 0


def test_riders_off_duty_are_left_alone():
    off = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.OFF, duty_changed_at=timezone.now())
    auto_off = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.AUTO_OFF)
    Rider.objects.filter(pk__in=[off.pk, auto_off.pk]).update(duty_changed_at=timezone.now() - timedelta(days=1))

    assert services.riders_stale_auto_off() == 0
    assert set(Rider.objects.values_list("duty_status", flat=True)) == {DutyStatus.OFF, DutyStatus.AUTO_OFF}


def test_the_silence_window_is_the_setting(settings):
    settings.RIDER_STALE_AFTER_S = 120
    rider = on_duty_since(timedelta(hours=1))
    sent_a_point(rider, timedelta(minutes=3))

    assert services.riders_stale_auto_off() == 1


def test_running_again_moves_nobody_twice():
    on_duty_since(timedelta(hours=1))
    assert services.riders_stale_auto_off() == 1
    assert services.riders_stale_auto_off() == 0
    assert DutyLog.objects.filter(end_reason=DutyEndReason.STALE).count() == 1


def test_finding_and_moving_stale_riders_takes_the_same_queries_for_one_or_many():
    def queries_to_move(count: int) -> int:
        for _ in range(count):
            on_duty_since(timedelta(hours=1))
        with CaptureQueriesContext(connection) as queries:
            assert services.riders_stale_auto_off() == count
        return len([q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]])

    # find, lock, re-check under the lock, close the duty logs, move the riders
    assert queries_to_move(1) == queries_to_move(12) == 5


def test_stale_riders_leave_the_live_map_after_commit(django_capture_on_commit_callbacks):
    city = CityFactory(code=f"S{uuid.uuid4().hex[:8].upper()}")
    silent, talking = on_duty_since(timedelta(hours=1), city=city), on_duty_since(timedelta(hours=1), city=city)
    for rider, ago in ((silent, timedelta(minutes=12)), (talking, timedelta(minutes=1))):
        sent_a_point(rider, ago)
        fleet_services.live_position_advance(
            rider_id=rider.pk,
            city_code=city.code,
            is_on_duty=True,
            point=Point(recorded_at=timezone.now() - ago, lat=12.97, lon=77.59),
        )
    assert live.geo_members(city.code) == {silent.pk, talking.pk}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.riders_stale_auto_off() == 1

    assert len(callbacks) == 1
    assert live.geo_members(city.code) == {talking.pk}


def test_the_celery_task_runs_the_service():
    on_duty_since(timedelta(hours=1))
    assert stale_auto_off_task.name == "riders.stale_auto_off"
    assert stale_auto_off_task.apply().get() == 1
    assert Rider.objects.get().duty_status == DutyStatus.AUTO_OFF
