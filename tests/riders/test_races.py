"""Concurrent writes to one rider serialise on the rider's row lock."""

import threading

import pytest
from django.db import connection

from riders import services
from riders.models import DutyLog, DutyStatus, KycStatus
from tests.riders.factories import RiderFactory


def run_together(count: int, action) -> list[BaseException]:
    """Runs ``action`` in ``count`` threads (each with its own database connection) released at once."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            action()
        except BaseException as exc:  # collected, asserted by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_duty_on_requests_open_one_duty_log():
    rider = RiderFactory(kyc_status=KycStatus.APPROVED)
    errors = run_together(6, lambda: services.rider_duty_set(rider_id=rider.pk, status=DutyStatus.ON))
    assert errors == []
    assert DutyLog.objects.filter(rider=rider, ended_at__isnull=True).count() == 1
    rider.refresh_from_db()
    assert rider.duty_status == DutyStatus.ON


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_with_one_mobile_create_one_rider():
    from fleet.models import City

    city = City.objects.create(code="BLR", name="Bengaluru", center_lat=12.97, center_lon=77.59)
    outcomes: list[str] = []

    def sign_up() -> None:
        try:
            services.rider_signup(mobile="9812345678", name="Ravi", city=city, password="correct horse battery")
            outcomes.append("created")
        except services.MobileTaken:
            outcomes.append("taken")

    assert run_together(4, sign_up) == []
    assert sorted(outcomes) == ["created", "taken", "taken", "taken"]
