"""Distance per rider per local day: computed from the location log by one statement, for the KPIs."""

import itertools
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app as celery_app
from fleet.distance import MAX_SEGMENT_SPEED_KMH, compute_statement, local_day_bounds, rider_day_distances_compute
from fleet.models import RiderDayDistance
from fleet.selectors import distance_km_on
from fleet.services import Point, location_points_record
from fleet.simulation import LatLon, Mover, destination, haversine_m, mover_trail
from fleet.tasks import rider_distances_compute_task
from tests.fleet.factories import CityFactory, RiderDayDistanceFactory
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2031, 3, 17)
BLR = LatLon(12.9716, 77.5946)
PLAN_PARTITION = re.compile(r" on (fleet_locationlog_(?:p\d{6}|default))\b")


@pytest.fixture(autouse=True)
def _portal_in_india(settings):
    settings.TIME_ZONE = "Asia/Kolkata"


@pytest.fixture(autouse=True)
def _months_of_the_test_days():
    """Partitions for the months the tests write in, created before any point (creating a month detaches the
    default partition, which PostgreSQL refuses while a deferred foreign-key check of a point is pending)."""
    with connection.cursor() as cursor:
        for month in range(1, 6):
            cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [datetime(2031, month, 1, tzinfo=UTC)])


def _track(start: datetime, count: int, *, interval_s: float = 5.0, seed: int = 7) -> list[Point]:
    """A simulated ride through Bengaluru: ``count`` noisy fixes ``interval_s`` apart from ``start``."""
    mover = Mover(position=BLR, home=BLR, cruise_kmh=25.0)
    _, fixes = mover_trail(mover, start=start, interval_s=interval_s, count=count, rng=random.Random(seed))
    return [Point(recorded_at=at, lat=fix.lat, lon=fix.lon, speed_kmh=fix.speed_kmh) for at, fix in fixes]


def _line(start: datetime, steps: list[tuple[float, float]]) -> list[Point]:
    """Points from BLR heading east: each step is (seconds after the previous point, metres moved)."""
    points = [Point(recorded_at=start, lat=BLR.lat, lon=BLR.lon)]
    for seconds, metres in steps:
        last = points[-1]
        there = destination(LatLon(last.lat, last.lon), 90.0, metres)
        points.append(Point(recorded_at=last.recorded_at + timedelta(seconds=seconds), lat=there.lat, lon=there.lon))
    return points


def _segment_m(a: Point, b: Point) -> float:
    return haversine_m(LatLon(a.lat, a.lon), LatLon(b.lat, b.lon))


def _haversine_sum(points: list[Point]) -> float:
    return sum(_segment_m(a, b) for a, b in itertools.pairwise(points))


def _max_speed_kmh(points: list[Point]) -> float:
    return max(
        _segment_m(a, b) / (b.recorded_at - a.recorded_at).total_seconds() * 3.6 for a, b in itertools.pairwise(points)
    )


def _row(rider, day: date = DAY) -> RiderDayDistance:
    return RiderDayDistance.objects.get(rider=rider, day=day)


def _figures() -> set[tuple[int, date, int, int]]:
    return set(RiderDayDistance.objects.values_list("rider_id", "day", "distance_m", "points"))


# --- the distance ---------------------------------------------------------------------------------


def test_a_days_distance_is_the_sum_of_haversine_distances_between_consecutive_points():
    rider = RiderFactory()
    track = _track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 240)
    assert _max_speed_kmh(track) < MAX_SEGMENT_SPEED_KMH  # a plain ride: no segment is a glitch
    location_points_record(rider_id=rider.pk, points=track)

    assert rider_day_distances_compute(day=DAY) == 1

    row = _row(rider)
    expected = _haversine_sum(track)
    assert expected > 1_000
    assert row.distance_m == pytest.approx(expected, abs=1.0)
    assert row.points == 240


def test_a_rider_with_a_single_point_rode_zero_metres():
    rider = RiderFactory()
    location_points_record(rider_id=rider.pk, points=_line(datetime(2031, 3, 17, 9, 0, tzinfo=IST), []))

    rider_day_distances_compute(day=DAY)

    assert (_row(rider).distance_m, _row(rider).points) == (0, 1)


def test_the_computation_is_one_statement():
    rider = RiderFactory()
    location_points_record(rider_id=rider.pk, points=_track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 20))

    with CaptureQueriesContext(connection) as queries:
        rider_day_distances_compute(day=DAY)

    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(statements) == 1
    assert "ON CONFLICT (rider_id, day) DO UPDATE" in statements[0]


# --- the local day --------------------------------------------------------------------------------


def test_a_local_day_runs_from_local_midnight_to_the_next():
    assert local_day_bounds(DAY) == (
        datetime(2031, 3, 16, 18, 30, tzinfo=UTC),
        datetime(2031, 3, 17, 18, 30, tzinfo=UTC),
    )


def test_points_of_two_local_days_are_split_at_local_midnight_not_utc():
    rider = RiderFactory()
    # 23:30 to 00:30 in Bengaluru: 18:00 to 19:00 UTC, all of it one UTC day.
    track = _track(datetime(2031, 3, 16, 23, 30, tzinfo=IST), 121, interval_s=30.0)
    midnight = datetime(2031, 3, 17, 0, 0, tzinfo=IST)
    before = [p for p in track if p.recorded_at < midnight]
    after = [p for p in track if p.recorded_at >= midnight]
    assert (len(before), len(after)) == (60, 61)
    location_points_record(rider_id=rider.pk, points=track)

    rider_day_distances_compute(day=date(2031, 3, 16))
    rider_day_distances_compute(day=DAY)

    evening, night = _row(rider, date(2031, 3, 16)), _row(rider, DAY)
    assert (evening.points, night.points) == (60, 61)
    assert evening.distance_m == pytest.approx(_haversine_sum(before), abs=1.0)
    # The segment across midnight pairs points of two days: it belongs to neither.
    assert night.distance_m == pytest.approx(_haversine_sum(after), abs=1.0)


# --- recomputing ----------------------------------------------------------------------------------


def test_recomputing_a_day_gives_the_same_rows():
    first, second = RiderFactory(), RiderFactory()
    location_points_record(rider_id=first.pk, points=_track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 100))
    location_points_record(rider_id=second.pk, points=_track(datetime(2031, 3, 17, 14, 0, tzinfo=IST), 50, seed=8))
    assert rider_day_distances_compute(day=DAY) == 2
    before = _figures()

    assert rider_day_distances_compute(day=DAY) == 2

    assert _figures() == before
    assert RiderDayDistance.objects.count() == 2


def test_a_late_point_is_counted_when_the_day_is_recomputed():
    rider = RiderFactory()
    track = _track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 60)
    late = track[30]
    location_points_record(rider_id=rider.pk, points=track[:30] + track[31:])
    rider_day_distances_compute(day=DAY)
    assert _row(rider).distance_m == pytest.approx(_haversine_sum(track[:30] + track[31:]), abs=1.0)

    location_points_record(rider_id=rider.pk, points=[late])  # a batch that was stuck on the phone
    rider_day_distances_compute(day=DAY)

    assert _row(rider).points == 60
    assert _row(rider).distance_m == pytest.approx(_haversine_sum(track), abs=1.0)


# --- GPS glitches ---------------------------------------------------------------------------------


def test_a_teleport_is_left_out_of_the_distance():
    rider = RiderFactory()
    track = _line(datetime(2031, 3, 17, 9, 0, tzinfo=IST), [(5.0, 40.0)] * 10)
    # The sixth fix jumps 20 km away for one reading, then the ride goes on where it was.
    glitch = destination(LatLon(track[5].lat, track[5].lon), 0.0, 20_000.0)
    track[5] = Point(recorded_at=track[5].recorded_at, lat=glitch.lat, lon=glitch.lon)
    location_points_record(rider_id=rider.pk, points=track)

    rider_day_distances_compute(day=DAY)

    # Both segments touching the glitch (4→5 and 5→6) are far beyond 200 km/h; the other 8 count.
    assert _row(rider).distance_m == pytest.approx(_haversine_sum(track[:5]) + _haversine_sum(track[6:]), abs=1.0)
    assert _row(rider).distance_m == pytest.approx(8 * 40.0, abs=1.0)
    assert _row(rider).points == 11


@pytest.mark.parametrize(
    ("seconds", "counted"),
    [
        pytest.param(30.0, True, id="1 km in 30 s (120 km/h) counts"),
        pytest.param(18.5, True, id="1 km in 18.5 s (195 km/h) counts"),
        pytest.param(17.5, False, id="1 km in 17.5 s (206 km/h) is a glitch"),
    ],
)
def test_only_segments_faster_than_200_kmh_are_left_out(seconds, counted):
    rider = RiderFactory()
    location_points_record(rider_id=rider.pk, points=_line(datetime(2031, 3, 17, 9, 0, tzinfo=IST), [(seconds, 1_000)]))

    rider_day_distances_compute(day=DAY)

    assert _row(rider).distance_m == (1_000 if counted else 0)


# --- who gets a row -------------------------------------------------------------------------------


def test_riders_without_points_that_day_get_no_row():
    rode, rode_the_next_day, stayed_home = RiderFactory(), RiderFactory(), RiderFactory()
    location_points_record(rider_id=rode.pk, points=_track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 10))
    location_points_record(rider_id=rode_the_next_day.pk, points=_track(datetime(2031, 3, 18, 9, 0, tzinfo=IST), 10))

    assert rider_day_distances_compute(day=DAY) == 1

    assert set(RiderDayDistance.objects.values_list("rider_id", "day")) == {(rode.pk, DAY)}
    assert stayed_home.pk not in set(RiderDayDistance.objects.values_list("rider_id", flat=True))


def test_rider_ids_limit_the_computation_to_those_riders():
    wanted, other = RiderFactory(), RiderFactory()
    for rider in (wanted, other):
        location_points_record(rider_id=rider.pk, points=_track(datetime(2031, 3, 17, 9, 0, tzinfo=IST), 10))

    assert rider_day_distances_compute(day=DAY, rider_ids=[wanted.pk]) == 1
    assert rider_day_distances_compute(day=DAY, rider_ids=[]) == 0

    assert set(RiderDayDistance.objects.values_list("rider_id", flat=True)) == {wanted.pk}


def test_the_database_refuses_a_second_row_for_a_rider_and_day_and_negative_figures():
    row = RiderDayDistanceFactory(day=DAY)
    with pytest.raises(IntegrityError, match="rider_day_distance_unique"), transaction.atomic():
        RiderDayDistanceFactory(rider=row.rider, day=DAY)
    with pytest.raises(IntegrityError, match="rider_day_distance_non_negative"), transaction.atomic():
        RiderDayDistanceFactory(distance_m=-1)
    with pytest.raises(IntegrityError, match="rider_day_distance_points_non_negative"), transaction.atomic():
        RiderDayDistanceFactory(points=-1)


# --- partition pruning ----------------------------------------------------------------------------


def _plan_partitions(*, day: date, rider_ids: list[int] | None) -> set[str]:
    statement, params = compute_statement(day=day, rider_ids=rider_ids)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + statement, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return set(PLAN_PARTITION.findall(plan))


@pytest.mark.parametrize("rider_ids", [None, [1, 2]], ids=["every rider", "some riders"])
@pytest.mark.parametrize(
    ("day", "partitions"),
    [
        pytest.param(DAY, {"fleet_locationlog_p203103"}, id="mid-month"),
        # The local 1st of March starts at 18:30 UTC on the 28th of February.
        pytest.param(date(2031, 3, 1), {"fleet_locationlog_p203102", "fleet_locationlog_p203103"}, id="first-of-month"),
    ],
)
def test_the_statement_reads_only_the_partitions_of_its_day(day, partitions, rider_ids):
    assert _plan_partitions(day=day, rider_ids=rider_ids) == partitions


# --- the task and the schedule --------------------------------------------------------------------


def test_the_task_computes_today_and_yesterday():
    rider = RiderFactory()
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    today_starts, _ = local_day_bounds(today)
    yesterday_starts, _ = local_day_bounds(yesterday)
    location_points_record(rider_id=rider.pk, points=_track(yesterday_starts + timedelta(hours=12), 20))
    location_points_record(rider_id=rider.pk, points=_track(today_starts + timedelta(minutes=1), 10))

    result = rider_distances_compute_task.apply().get()

    assert json.loads(json.dumps(result)) == {yesterday.isoformat(): 1, today.isoformat(): 1}
    assert (_row(rider, yesterday).points, _row(rider, today).points) == (20, 10)


def test_the_task_is_registered_with_celery():
    celery_app.loader.import_default_modules()
    assert "fleet.rider_distances_compute" in celery_app.tasks


# --- the KPI --------------------------------------------------------------------------------------


def test_distance_km_on_sums_the_day_for_every_rider_or_one_city():
    blr, del_ = CityFactory(code="BLR"), CityFactory(code="DEL")
    RiderDayDistanceFactory(rider=RiderFactory(city=blr), day=DAY, distance_m=12_500)
    RiderDayDistanceFactory(rider=RiderFactory(city=blr), day=DAY, distance_m=7_250)
    RiderDayDistanceFactory(rider=RiderFactory(city=del_), day=DAY, distance_m=3_000)
    RiderDayDistanceFactory(rider=RiderFactory(city=blr), day=DAY - timedelta(days=1), distance_m=99_000)

    assert distance_km_on(day=DAY) == pytest.approx(22.75)
    assert distance_km_on(day=DAY, city_code="blr") == pytest.approx(19.75)
    assert distance_km_on(day=DAY, city_code="DEL") == pytest.approx(3.0)
    assert distance_km_on(day=DAY, city_code="BOM") == 0.0
    assert distance_km_on(day=DAY + timedelta(days=1)) == 0.0
