"""An SOS is an incident: it stays open until a dispatcher takes it, escalates to every city when nobody does
within SOS_ESCALATE_AFTER_S, and keeps the rider's app reporting GPS every SOS_GPS_INTERVAL_S meanwhile."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from config.errors import Conflict
from config.realtime import dispatch_group, rider_group
from riders import services, tasks
from riders.models import AlertStatus, EmergencyAlert
from tests.fleet.factories import CityFactory
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def scheduled_escalations(monkeypatch) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Escalations scheduled at raise are recorded, not queued on a broker some worker might be reading."""
    scheduled: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.sos_escalate_task, "apply_async", lambda **kwargs: scheduled.append(kwargs))
    return scheduled


def new_city():  # type: ignore[no-untyped-def]
    return CityFactory(code=f"S{uuid.uuid4().hex[:8].upper()}")  # groups no other test run listens on


@pytest.fixture
def dispatcher():  # type: ignore[no-untyped-def]
    return UserFactory(username=f"dispatcher-{uuid.uuid4().hex[:6]}", is_staff=True)


def test_raising_tells_the_city_at_once_and_the_rider_to_report_faster(listen, scheduled_escalations, settings):
    settings.SOS_ESCALATE_AFTER_S = 60
    rider = RiderFactory(city=new_city())
    listener = listen(dispatch_group(rider.city.code), rider_group(rider.pk))

    alert = services.emergency_alert_raise(rider=rider, lat=12.9, lon=77.6, message="Help")

    [raised] = listener.messages(dispatch_group(rider.city.code))
    assert raised == json.loads(json.dumps(raised))
    assert raised["event"] == "sos.raised"
    assert raised["payload"]["alert_id"] == alert.pk
    assert raised["payload"]["escalated"] is False
    [interval] = listener.messages(rider_group(rider.pk))
    assert (interval["event"], interval["payload"]) == ("gps.interval", {"seconds": 2})
    assert scheduled_escalations == [{"args": (alert.pk,), "countdown": 60}]


def test_acknowledging_takes_the_alert_tells_the_city_and_puts_the_rider_back_to_normal_gps(listen, dispatcher):
    rider = RiderFactory(city=new_city())
    alert = services.emergency_alert_raise(rider=rider, lat=None, lon=None)
    listener = listen(dispatch_group(rider.city.code), rider_group(rider.pk))

    taken = services.emergency_alert_acknowledge(alert_id=alert.pk, user=dispatcher)

    stored = EmergencyAlert.objects.get(pk=alert.pk)
    assert taken.pk == alert.pk
    assert (stored.status, stored.acknowledged_by, stored.acknowledged_at) == (
        AlertStatus.ACKNOWLEDGED,
        dispatcher,
        taken.acknowledged_at,
    )
    [acknowledged] = listener.messages(dispatch_group(rider.city.code))
    assert acknowledged["event"] == "sos.acknowledged"
    assert acknowledged["payload"] == {
        "alert_id": alert.pk,
        "rider_id": rider.pk,
        "acknowledged_by": dispatcher.username,
        "acknowledged_at": stored.acknowledged_at.isoformat(),
    }
    [interval] = listener.messages(rider_group(rider.pk))
    assert (interval["event"], interval["payload"]) == ("gps.interval", {"seconds": 5})


def test_the_rider_stays_on_fast_gps_while_another_of_their_alerts_is_open(listen, dispatcher):
    rider = RiderFactory(city=new_city())
    first = services.emergency_alert_raise(rider=rider, lat=None, lon=None)
    services.emergency_alert_raise(rider=rider, lat=None, lon=None)
    listener = listen(rider_group(rider.pk))

    services.emergency_alert_acknowledge(alert_id=first.pk, user=dispatcher)

    [interval] = listener.messages(rider_group(rider.pk))
    assert interval["payload"] == {"seconds": 2}


def test_a_second_acknowledge_is_a_conflict_and_keeps_the_first_dispatcher(dispatcher):
    rider = RiderFactory(city=new_city())
    alert = services.emergency_alert_raise(rider=rider, lat=None, lon=None)
    services.emergency_alert_acknowledge(alert_id=alert.pk, user=dispatcher)
    other = UserFactory(username=f"other-{uuid.uuid4().hex[:6]}", is_staff=True)

    with pytest.raises(Conflict):
        services.emergency_alert_acknowledge(alert_id=alert.pk, user=other)

    assert EmergencyAlert.objects.get(pk=alert.pk).acknowledged_by == dispatcher


def test_two_dispatchers_acknowledging_at_once_get_one_success_and_one_conflict(dispatcher):
    rider = RiderFactory(city=new_city())
    alert = services.emergency_alert_raise(rider=rider, lat=None, lon=None)
    other = UserFactory(username=f"other-{uuid.uuid4().hex[:6]}", is_staff=True)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def take(user) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            services.emergency_alert_acknowledge(alert_id=alert.pk, user=user)
            outcomes.append("taken")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(user,)) for user in (dispatcher, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["conflict", "taken"]


def test_an_unacknowledged_alert_escalates_once_to_every_city_and_is_logged(listen, caplog):
    home, elsewhere = new_city(), new_city()
    rider = RiderFactory(city=home)
    alert = services.emergency_alert_raise(rider=rider, lat=12.9, lon=77.6, message="Help")
    listener = listen(dispatch_group(home.code), dispatch_group(elsewhere.code))
    due = alert.raised_at + timedelta(seconds=61)

    with caplog.at_level(logging.WARNING, logger="riders.services"):
        assert services.emergency_alert_escalate(alert_id=alert.pk, now=due) is True
    assert services.emergency_alert_escalate(alert_id=alert.pk, now=due + timedelta(seconds=60)) is False
    assert services.emergency_alerts_escalate_due(now=due + timedelta(seconds=120)) == 0

    assert EmergencyAlert.objects.get(pk=alert.pk).escalated_at == due
    for city in (home, elsewhere):
        [escalated] = listener.messages(dispatch_group(city.code))
        assert escalated["event"] == "sos.raised"
        assert escalated["payload"]["alert_id"] == alert.pk
        assert escalated["payload"]["escalated"] is True
    assert any(f"SOS {alert.pk}" in record.getMessage() for record in caplog.records)


def test_an_alert_is_not_escalated_before_its_time_nor_after_it_was_acknowledged(dispatcher):
    rider = RiderFactory(city=new_city())
    alert = services.emergency_alert_raise(rider=rider, lat=None, lon=None)

    assert services.emergency_alert_escalate(alert_id=alert.pk, now=alert.raised_at + timedelta(seconds=59)) is False
    services.emergency_alert_acknowledge(alert_id=alert.pk, user=dispatcher)
    assert services.emergency_alert_escalate(alert_id=alert.pk, now=alert.raised_at + timedelta(seconds=61)) is False
    assert EmergencyAlert.objects.get(pk=alert.pk).escalated_at is None


def test_the_sweep_escalates_every_due_alert_its_task_missed():
    rider = RiderFactory(city=new_city())
    old, fresh = (services.emergency_alert_raise(rider=rider, lat=None, lon=None) for _ in range(2))
    EmergencyAlert.objects.filter(pk=old.pk).update(raised_at=old.raised_at - timedelta(seconds=120))

    assert tasks.sos_escalate_due_task() == 1

    assert EmergencyAlert.objects.get(pk=old.pk).escalated_at is not None
    assert EmergencyAlert.objects.get(pk=fresh.pk).escalated_at is None


def test_raising_reads_nothing_it_was_given_and_publishes_without_reading_the_alert_back(
    listen, django_assert_num_queries
):
    rider = RiderFactory(city=new_city())
    listener = listen(dispatch_group(rider.city.code))

    with django_assert_num_queries(3):  # BEGIN, the INSERT, COMMIT: the rider and its city came with the token
        alert = services.emergency_alert_raise(rider=rider, lat=12.9, lon=77.6, message="Help")

    [raised] = listener.messages(dispatch_group(rider.city.code))
    stored = EmergencyAlert.objects.get(pk=alert.pk)
    assert raised["payload"] == {
        "alert_id": stored.pk,
        "rider_id": rider.pk,
        "rider_name": rider.name,
        "rider_mobile": rider.mobile,
        "lat": 12.9,
        "lon": 77.6,
        "message": "Help",
        "raised_at": stored.raised_at.isoformat(),
        "escalated": False,
    }
