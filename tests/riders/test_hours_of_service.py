"""Hours of service: minutes are counted from duty logs, and riders at the limit are moved to AUTO_OFF."""

from datetime import timedelta

import pytest
from django.utils import timezone

from riders import selectors, services
from riders.models import DutyEndReason, DutyLog, DutyStatus, KycStatus
from riders.tasks import hos_enforce_task
from tests.riders.factories import DutyLogFactory, RiderFactory

pytestmark = pytest.mark.django_db


def on_duty_rider(started_ago: timedelta):
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON)
    DutyLogFactory(rider=rider, started_at=timezone.now() - started_ago)
    return rider


def local_midnight():
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def test_minutes_today_count_only_the_part_after_local_midnight():
    rider = RiderFactory()
    midnight = local_midnight()
    DutyLogFactory(
        rider=rider,
        started_at=midnight - timedelta(hours=2),
        ended_at=midnight + timedelta(minutes=30),
        end_reason=DutyEndReason.MANUAL,
    )
    hos = selectors.rider_hos(rider_id=rider.pk, now=midnight + timedelta(hours=1))
    assert hos.minutes_today == 30
    assert hos.minutes_7d == 150


def test_an_open_log_counts_until_now():
    rider = RiderFactory()
    now = timezone.now()
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=45))
    assert selectors.rider_hos(rider_id=rider.pk, now=now).minutes_7d == 45


def test_logs_older_than_seven_days_do_not_count():
    rider = RiderFactory()
    now = timezone.now()
    DutyLogFactory(
        rider=rider, started_at=now - timedelta(days=9), ended_at=now - timedelta(days=8), end_reason="MANUAL"
    )
    assert selectors.rider_hos(rider_id=rider.pk, now=now).minutes_7d == 0


def test_minutes_left_is_the_tighter_of_the_daily_and_weekly_limits(settings):
    settings.HOS_DAILY_LIMIT_MINUTES = 600
    settings.HOS_WEEKLY_LIMIT_MINUTES = 660
    rider = RiderFactory()
    now = timezone.now()
    DutyLogFactory(
        rider=rider,
        started_at=now - timedelta(days=3, hours=10),
        ended_at=now - timedelta(days=3),
        end_reason="MANUAL",
    )
    hos = selectors.rider_hos(rider_id=rider.pk, now=now)
    assert hos.minutes_left == 60


def test_riders_at_the_daily_limit_are_moved_to_auto_off(settings):
    settings.HOS_DAILY_LIMIT_MINUTES = 60
    tired = on_duty_rider(started_ago=timedelta(minutes=61))
    fresh = on_duty_rider(started_ago=timedelta(minutes=10))
    if timezone.localtime() - timedelta(minutes=61) < local_midnight():
        pytest.skip("the test needs an hour of today behind it")  # only in the first minutes after midnight
    assert services.riders_hos_enforce() == 1
    tired.refresh_from_db()
    fresh.refresh_from_db()
    assert tired.duty_status == DutyStatus.AUTO_OFF
    assert fresh.duty_status == DutyStatus.ON
    log = DutyLog.objects.get(rider=tired)
    assert log.ended_at is not None
    assert log.end_reason == DutyEndReason.HOURS


def test_weekly_limit_moves_riders_too(settings):
    settings.HOS_WEEKLY_LIMIT_MINUTES = 120
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON)
    now = timezone.now()
    DutyLogFactory(
        rider=rider, started_at=now - timedelta(days=2, hours=2), ended_at=now - timedelta(days=2), end_reason="MANUAL"
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=5))
    assert services.riders_hos_enforce(now=now) == 1
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.AUTO_OFF


def test_enforcing_twice_moves_nobody_the_second_time(settings):
    settings.HOS_DAILY_LIMIT_MINUTES = 1
    on_duty_rider(started_ago=timedelta(minutes=2))
    first = services.riders_hos_enforce()
    assert services.riders_hos_enforce() == 0
    assert first <= 1


def test_the_celery_task_runs_the_service(settings):
    settings.HOS_WEEKLY_LIMIT_MINUTES = 1
    rider = on_duty_rider(started_ago=timedelta(minutes=5))
    assert hos_enforce_task.apply().get() == 1
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.AUTO_OFF


def test_going_on_duty_writes_a_log_and_off_closes_it():
    rider = RiderFactory(kyc_status=KycStatus.APPROVED)
    services.rider_duty_set(rider_id=rider.pk, status=DutyStatus.ON)
    assert DutyLog.objects.filter(rider=rider, ended_at__isnull=True).count() == 1
    services.rider_duty_set(rider_id=rider.pk, status=DutyStatus.ON)
    assert DutyLog.objects.filter(rider=rider).count() == 1
    services.rider_duty_set(rider_id=rider.pk, status=DutyStatus.OFF)
    log = DutyLog.objects.get(rider=rider)
    assert log.end_reason == DutyEndReason.MANUAL
    assert log.ended_at is not None
