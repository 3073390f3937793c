"""The location log is range-partitioned by month and keyed by (rider, recorded_at)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet.models import LocationLog
from fleet.services import Point, location_points_record
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db


def _partition_of(rider_id: int, recorded_at: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM fleet_locationlog WHERE rider_id = %s AND recorded_at = %s",
            [rider_id, recorded_at],
        )
        return cursor.fetchone()[0]


def test_partitions_exist_for_this_month_and_the_next_two():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'fleet_locationlog'::regclass"
        )
        partitions = {row[0] for row in cursor.fetchall()}
    month = timezone.now().astimezone(UTC).replace(day=1)
    expected = set()
    for _ in range(3):
        expected.add(f"fleet_locationlog_p{month:%Y%m}")
        month = (month + timedelta(days=32)).replace(day=1)
    assert expected <= partitions


def test_a_point_lands_in_the_partition_of_its_month():
    rider = RiderFactory()
    recorded_at = timezone.now().astimezone(UTC).replace(microsecond=0)
    location_points_record(rider_id=rider.pk, points=[Point(recorded_at=recorded_at, lat=12.97, lon=77.59)])
    assert _partition_of(rider.pk, recorded_at) == f"fleet_locationlog_p{recorded_at:%Y%m}"


def test_month_boundaries_are_utc_midnights():
    rider = RiderFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [datetime(2031, 3, 15, tzinfo=UTC)])
    last_instant_of_february = datetime(2031, 2, 28, 23, 59, 59, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [last_instant_of_february])
    first_of_march = datetime(2031, 3, 1, tzinfo=UTC)
    points = [
        Point(recorded_at=last_instant_of_february, lat=1.0, lon=1.0),
        Point(recorded_at=first_of_march, lat=1.0, lon=1.0),
    ]
    location_points_record(rider_id=rider.pk, points=points)
    assert _partition_of(rider.pk, last_instant_of_february) == "fleet_locationlog_p203102"
    assert _partition_of(rider.pk, first_of_march) == "fleet_locationlog_p203103"


def test_creating_a_partition_twice_is_harmless():
    with connection.cursor() as cursor:
        cursor.execute("SELECT fleet_locationlog_partitions_ensure(2)")
        first = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT fleet_locationlog_partitions_ensure(2)")
        second = [row[0] for row in cursor.fetchall()]
    assert first == second
    assert len(first) == 3


def test_replayed_point_is_refused_by_the_primary_key():
    rider = RiderFactory()
    recorded_at = timezone.now()
    LocationLog.objects.create(rider=rider, recorded_at=recorded_at, lat=12.9, lon=77.5)
    with pytest.raises(IntegrityError), transaction.atomic():
        LocationLog.objects.create(rider=rider, recorded_at=recorded_at, lat=13.0, lon=77.6)


def test_replayed_batch_stores_no_duplicate_points():
    rider = RiderFactory()
    start = timezone.now() - timedelta(minutes=5)
    batch = [Point(recorded_at=start + timedelta(seconds=5 * i), lat=12.9 + i / 1000, lon=77.5) for i in range(50)]
    assert location_points_record(rider_id=rider.pk, points=batch) == 50
    assert location_points_record(rider_id=rider.pk, points=batch) == 0
    assert LocationLog.objects.filter(rider=rider).count() == 50


def test_a_batch_is_one_insert_statement():
    rider = RiderFactory()
    start = timezone.now() - timedelta(minutes=10)
    batch = [Point(recorded_at=start + timedelta(seconds=i), lat=12.9, lon=77.5) for i in range(500)]
    with CaptureQueriesContext(connection) as queries:
        location_points_record(rider_id=rider.pk, points=batch)
    inserts = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1


def test_same_instant_for_two_riders_is_two_points():
    first, second = RiderFactory(), RiderFactory()
    recorded_at = timezone.now()
    for rider in (first, second):
        location_points_record(rider_id=rider.pk, points=[Point(recorded_at=recorded_at, lat=12.9, lon=77.5)])
    assert LocationLog.objects.filter(recorded_at=recorded_at).count() == 2


@pytest.mark.parametrize(
    ("lat", "lon", "extra"),
    [(91.0, 77.5, {}), (12.9, -181.0, {}), (12.9, 77.5, {"heading_deg": 360}), (12.9, 77.5, {"battery_pct": 101})],
)
def test_out_of_range_points_are_refused(lat, lon, extra):
    rider = RiderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LocationLog.objects.create(rider=rider, recorded_at=timezone.now(), lat=lat, lon=lon, **extra)


def test_a_point_outside_every_month_partition_lands_in_the_default_partition():
    rider = RiderFactory()
    recorded_at = datetime(1999, 1, 1, tzinfo=UTC)
    LocationLog.objects.create(rider=rider, recorded_at=recorded_at, lat=1.0, lon=1.0)
    assert _partition_of(rider.pk, recorded_at) == "fleet_locationlog_default"
