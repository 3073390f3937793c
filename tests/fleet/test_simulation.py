"""The simulator's path math, and ``manage.py simulate`` streaming GPS for on-duty riders."""

import io
import itertools
import os
import random
import signal
import threading
from collections.abc import Sequence

import pytest
from django.core.management import call_command
from django.db import DatabaseError

from fleet.management.commands.simulate import DirectSink, Simulation
from fleet.models import LocationLog, VehicleKind
from fleet.services import Point
from fleet.simulation import (
    LatLon,
    Mover,
    Waypoint,
    bearing_deg,
    destination,
    haversine_m,
    mover_advance,
    order_waypoints,
    random_point_within,
    step_toward,
)
from riders.models import DutyStatus, KycStatus, RiderStatus
from tests.fleet.factories import CityFactory, VehicleFactory
from tests.orders.factories import AssignedOrderFactory
from tests.riders.factories import RiderFactory

BLR = LatLon(12.9716, 77.5946)


# --- Pure path math -----------------------------------------------------------------------------


def test_one_degree_of_latitude_is_about_111_km():
    assert haversine_m(LatLon(0.0, 0.0), LatLon(1.0, 0.0)) == pytest.approx(111_195, abs=1)


def test_distance_london_to_paris_is_343_km():
    london, paris = LatLon(51.5074, -0.1278), LatLon(48.8566, 2.3522)
    assert haversine_m(london, paris) == pytest.approx(343_560, abs=500)
    assert haversine_m(paris, london) == pytest.approx(haversine_m(london, paris))


def test_distance_to_itself_is_zero():
    assert haversine_m(BLR, BLR) == 0.0


@pytest.mark.parametrize(
    ("target", "expected"),
    [(LatLon(0.0, 1.0), 90.0), (LatLon(1.0, 0.0), 0.0), (LatLon(-1.0, 0.0), 180.0), (LatLon(0.0, -1.0), 270.0)],
)
def test_bearing_of_the_four_cardinal_directions(target, expected):
    assert bearing_deg(LatLon(0.0, 0.0), target) == pytest.approx(expected, abs=1e-9)


def test_bearing_due_east_in_a_city_is_90():
    assert bearing_deg(BLR, LatLon(BLR.lat, BLR.lon + 0.01)) == pytest.approx(90.0, abs=0.01)


def test_destination_lands_the_given_distance_away_on_the_given_bearing():
    rng = random.Random(7)
    for _ in range(200):
        bearing, distance = rng.uniform(0, 360), rng.uniform(1, 20_000)
        there = destination(BLR, bearing, distance)
        assert haversine_m(BLR, there) == pytest.approx(distance, rel=1e-9, abs=1e-6)
        assert bearing_deg(BLR, there) == pytest.approx(bearing, abs=1e-6)


def test_step_never_overshoots_the_target():
    rng = random.Random(42)
    for _ in range(1_000):
        position = random_point_within(BLR, 10_000, rng)
        target = random_point_within(BLR, 10_000, rng)
        step = rng.uniform(0, 15_000)
        before = haversine_m(position, target)
        after_step = step_toward(position, target, step)
        assert haversine_m(after_step, target) <= before + 1e-6
        assert haversine_m(position, after_step) <= step + 1e-6
        if step >= before:
            assert after_step == target
        else:
            assert haversine_m(after_step, target) == pytest.approx(before - step, abs=0.01)


def test_a_zero_step_stays_put():
    target = LatLon(BLR.lat + 0.01, BLR.lon)
    assert step_toward(BLR, target, 0.0) == BLR


def test_random_points_stay_within_the_radius():
    rng = random.Random(3)
    assert all(haversine_m(BLR, random_point_within(BLR, 5_000, rng)) <= 5_000 + 1e-6 for _ in range(500))


def test_a_mover_heads_for_its_waypoint_and_reports_that_heading():
    east = destination(BLR, 90.0, 3_000)
    mover = Mover(position=BLR, home=BLR, cruise_kmh=25.0, waypoints=(Waypoint(east, dwell_s=60.0),))
    rng = random.Random(1)
    distances = [haversine_m(BLR, east)]
    while distances[-1] > 0 and len(distances) < 1_000:
        mover, fix = mover_advance(mover, dt_s=2.0, rng=rng)
        distances.append(haversine_m(mover.position, east))
        assert 0 <= fix.heading_deg < 360
        assert 0 <= fix.battery_pct <= 100
        assert fix.speed_kmh >= 0
        if fix.speed_kmh > 0:
            assert fix.heading_deg in (89, 90, 91)
    assert distances[-1] == 0.0
    # 3 km at 25 km/h cruising is ~7 minutes; with acceleration and red lights, well under 15.
    assert len(distances) * 2.0 < 15 * 60
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(distances))
    mover, _ = mover_advance(mover, dt_s=2.0, rng=rng)
    assert mover.position == east  # standing at the stop for its dwell time


def test_a_mover_moves_at_a_plausible_bike_speed_and_drains_its_battery():
    mover = Mover(position=BLR, home=BLR, cruise_kmh=30.0, battery_pct=80.0)
    rng = random.Random(5)
    speeds = []
    for _ in range(300):
        mover, fix = mover_advance(mover, dt_s=2.0, rng=rng)
        speeds.append(fix.speed_kmh)
    moving = [s for s in speeds if s > 0]
    assert max(speeds) <= 30.0 * 1.3 + 0.1
    assert 12 <= sum(moving) / len(moving) <= 36
    assert mover.battery_pct < 80.0
    assert haversine_m(BLR, mover.position) <= 5_000 + 1_000  # roams near home


def test_order_waypoints_send_a_picked_up_order_straight_to_its_drop():
    pickup, drop = LatLon(12.97, 77.59), LatLon(12.93, 77.62)
    rng = random.Random(0)
    assert [w.position for w in order_waypoints([("ACCEPTED", pickup, drop)], rng)] == [pickup, drop]
    assert [w.position for w in order_waypoints([("PICKED_UP", pickup, drop)], rng)] == [drop]


# --- manage.py simulate ---------------------------------------------------------------------------


def _on_duty_rider(city, **kwargs):
    return RiderFactory(
        city=city,
        status=RiderStatus.ACTIVE,
        kyc_status=KycStatus.APPROVED,
        duty_status=DutyStatus.ON,
        vehicle=VehicleFactory(city=city, kind=VehicleKind.BIKE),
        **kwargs,
    )


@pytest.mark.django_db
def test_simulate_stores_one_point_per_tick_for_each_on_duty_rider_only():
    city = CityFactory(code="BLR", center_lat=BLR.lat, center_lon=BLR.lon)
    riders = [_on_duty_rider(city) for _ in range(3)]
    off_duty = RiderFactory(city=city, status=RiderStatus.ACTIVE, kyc_status=KycStatus.APPROVED)
    out = io.StringIO()
    call_command(
        "simulate",
        "--iterations",
        "6",
        "--tick-seconds",
        "0.01",
        "--batch-seconds",
        "0.02",
        "--seed",
        "1",
        stdout=out,
    )
    for rider in riders:
        points = list(LocationLog.objects.filter(rider=rider).order_by("recorded_at"))
        assert len(points) == 6
        assert all(haversine_m(BLR, LatLon(p.lat, p.lon)) < 8_000 for p in points)
    assert not LocationLog.objects.filter(rider=off_duty).exists()
    assert "18 stored, 0 duplicates" in out.getvalue()


@pytest.mark.django_db
def test_simulate_resumes_from_the_riders_last_point_and_heads_for_its_order():
    city = CityFactory(code="BLR", center_lat=BLR.lat, center_lon=BLR.lon)
    rider = _on_duty_rider(city)
    pickup = destination(BLR, 0.0, 2_000)
    AssignedOrderFactory(city=city, rider=rider, pickup_lat=pickup.lat, pickup_lon=pickup.lon)
    call_command("simulate", "--iterations", "1", "--tick-seconds", "0.01", "--seed", "2", stdout=io.StringIO())
    first = LocationLog.objects.get(rider=rider)
    call_command(
        "simulate",
        "--iterations",
        "20",
        "--tick-seconds",
        "0.01",
        "--speedup",
        "100",
        "--seed",
        "3",
        stdout=io.StringIO(),
    )
    last = LocationLog.objects.filter(rider=rider).order_by("-recorded_at").first()
    start = LatLon(first.lat, first.lon)
    # 20 ticks of 1 s simulated each at ~15-35 km/h: a few hundred metres from where it stopped, nearer the pickup.
    assert haversine_m(start, LatLon(last.lat, last.lon)) < 1_000
    assert haversine_m(LatLon(last.lat, last.lon), pickup) < haversine_m(start, pickup)


class _LostResponseSink:
    """Stores the batch, then fails as if the acknowledgement was lost: the caller must retry."""

    name = "lost-response"

    def __init__(self) -> None:
        self.inner = DirectSink()
        self.failures_left = 1

    def post(self, *, rider_id: int, points: Sequence[Point]) -> int:
        stored = self.inner.post(rider_id=rider_id, points=points)
        if self.failures_left:
            self.failures_left -= 1
            raise DatabaseError("connection lost after commit")
        return stored


@pytest.mark.django_db
def test_a_retried_batch_stores_no_duplicate_points():
    city = CityFactory(code="BLR", center_lat=BLR.lat, center_lon=BLR.lon)
    rider = _on_duty_rider(city)
    sim = Simulation(sink=_LostResponseSink(), max_riders=None, rng=random.Random(0))
    sim.refresh()
    for _ in range(5):
        sim.tick(dt_s=2.0)
    assert sim.flush() is None  # failed: the points stay buffered
    assert LocationLog.objects.filter(rider=rider).count() == 5
    assert sim.flush() == (1, 5, 0, 5)  # the retry finds them all stored already
    assert LocationLog.objects.filter(rider=rider).count() == 5
    sim.tick(dt_s=2.0)
    assert sim.flush() == (1, 1, 1, 0)
    assert LocationLog.objects.filter(rider=rider).count() == 6


@pytest.mark.django_db
def test_riders_going_off_duty_leave_the_simulation_after_their_points_are_posted():
    city = CityFactory(code="BLR", center_lat=BLR.lat, center_lon=BLR.lon)
    staying, leaving = _on_duty_rider(city), _on_duty_rider(city)
    sim = Simulation(sink=DirectSink(), max_riders=None, rng=random.Random(0))
    assert sim.refresh() == (2, 0)
    sim.tick(dt_s=2.0)
    leaving.duty_status = DutyStatus.OFF
    leaving.save(update_fields=["duty_status"])
    assert sim.refresh() == (0, 1)
    assert set(sim.riders) == {staying.pk}
    assert LocationLog.objects.filter(rider=leaving).count() == 1


@pytest.mark.django_db
def test_ctrl_c_stops_the_simulation_cleanly_after_posting_the_buffer():
    city = CityFactory(code="BLR", center_lat=BLR.lat, center_lon=BLR.lon)
    rider = _on_duty_rider(city)
    handler_before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    out = io.StringIO()
    try:
        call_command("simulate", "--tick-seconds", "0.05", "--batch-seconds", "60", stdout=out)
    finally:
        timer.cancel()
    assert "Stopping: posting what is buffered." in out.getvalue()
    assert LocationLog.objects.filter(rider=rider).count() >= 5
    assert signal.getsignal(signal.SIGINT) is handler_before
