"""The location log's partition lifecycle: months ahead, the default guard, archive, restore, pruning."""

import gzip
import hashlib
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from config.celery import app as celery_app
from fleet import partitions
from fleet.models import LocationLog
from fleet.partitions import (
    ArchiveError,
    location_archive_restore,
    location_partitions,
    location_partitions_archive,
    location_partitions_ensure,
    month_start,
    months_shift,
    partition_name,
)
from fleet.selectors import rider_track_recent
from fleet.services import Point, location_points_record
from fleet.tasks import archive_location_partitions_task, ensure_location_partitions_task
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db

ROW = "rider_id, recorded_at, lat, lon, speed_kmh, heading_deg, accuracy_m, battery_pct, received_at"
PLAN_PARTITION = re.compile(r" on (fleet_locationlog_(?:p\d{6}|default))\b")


@pytest.fixture(autouse=True)
def _archive_in_tmp(settings, tmp_path):
    settings.LOCATION_ARCHIVE_DIR = tmp_path / "archive"
    settings.LOCATION_PARTITION_MONTHS_AHEAD = 3
    settings.LOCATION_RETENTION_MONTHS = 6


@pytest.fixture(autouse=True)
def _foreign_keys_checked_at_once(django_db_blocker):
    """In production archive and restore run in their own (durable, outermost) transaction, so no deferred
    foreign-key check of an earlier insert is pending there; PostgreSQL refuses to DETACH or DROP a table
    that has one. A test inserts its points in the same transaction, so its checks run at once instead."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _partition_create(month: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [month])
        return cursor.fetchone()[0]


def _rows(where: str = "TRUE", params: list | None = None, table: str = "fleet_locationlog") -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ROW} FROM {table} WHERE {where}", params or [])
        return set(cursor.fetchall())


def _month_rows(month: datetime) -> set[tuple]:
    return _rows("recorded_at >= %s AND recorded_at < %s", [month, months_shift(month, 1)])


def _tables_of(rider_id: int) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM fleet_locationlog WHERE rider_id = %s", [rider_id]
        )
        return {row[0] for row in cursor.fetchall()}


def _points_in(month: datetime, count: int, *, hour_step: int = 7) -> list[Point]:
    return [
        Point(
            recorded_at=month + timedelta(hours=hour_step * i, microseconds=123_457 * i),
            lat=12.9 + i / 997,
            lon=77.5 - i / 991,
            speed_kmh=None if i % 5 == 0 else 0.1 * i,
            heading_deg=i % 360,
            accuracy_m=3.3 + i / 7,
            battery_pct=None if i % 3 == 0 else 100 - i % 100,
        )
        for i in range(count)
    ]


def _plan_partitions(queryset) -> set[str]:
    return set(PLAN_PARTITION.findall(queryset.explain()))


def _archives(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.csv.gz")) if directory.exists() else []


# --- ensure -------------------------------------------------------------------------------------------


def test_ensure_creates_this_month_and_the_next_three():
    now = datetime(2041, 11, 20, 23, 30, tzinfo=UTC)
    result = location_partitions_ensure(now=now)
    expected = [f"fleet_locationlog_p{month}" for month in ("204111", "204112", "204201", "204202")]
    assert result.months == expected
    assert result.created == expected
    assert set(expected) | {"fleet_locationlog_default"} <= set(location_partitions())


def test_ensure_twice_creates_nothing_the_second_time():
    now = datetime(2041, 11, 20, tzinfo=UTC)
    first = location_partitions_ensure(now=now)
    second = location_partitions_ensure(now=now)
    assert second.months == first.months
    assert second.created == []
    assert second.moved_from_default == {}


def test_months_are_utc_even_when_now_is_given_in_another_zone():
    ist_first_of_month = datetime(2041, 12, 1, 2, 0, tzinfo=UTC).astimezone(timezone.get_default_timezone())
    assert ist_first_of_month.day == 1
    result = location_partitions_ensure(now=datetime(2041, 11, 30, 20, 30, tzinfo=UTC), months_ahead=0)
    assert result.months == ["fleet_locationlog_p204111"]


def test_the_default_partition_exists():
    assert "fleet_locationlog_default" in location_partitions()


# --- the default partition ------------------------------------------------------------------------


def test_a_point_far_outside_every_partition_lands_in_the_default_and_is_kept():
    rider = RiderFactory()
    far = [Point(recorded_at=datetime(1999, 1, 1, tzinfo=UTC), lat=1.0, lon=1.0)]
    assert location_points_record(rider_id=rider.pk, points=far) == 1
    assert _tables_of(rider.pk) == {"fleet_locationlog_default"}
    assert LocationLog.objects.filter(rider=rider).count() == 1


def test_creating_a_month_moves_the_defaults_points_of_that_month_into_it():
    rider = RiderFactory()
    month = datetime(2033, 5, 1, tzinfo=UTC)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 20))
    location_points_record(rider_id=rider.pk, points=_points_in(datetime(2033, 7, 1, tzinfo=UTC), 3))
    before = _month_rows(month)

    assert _partition_create(datetime(2033, 5, 17, tzinfo=UTC)) == "fleet_locationlog_p203305"

    assert _rows("TRUE", table="fleet_locationlog_p203305") == before
    assert len(before) == 20
    assert _rows("recorded_at < %s", [datetime(2033, 7, 1, tzinfo=UTC)], table="fleet_locationlog_default") == set()
    assert len(_rows(table="fleet_locationlog_default")) == 3
    assert "fleet_locationlog_default" in location_partitions()


def test_ensure_moves_every_point_of_the_default_into_its_month():
    rider = RiderFactory()
    stray = _points_in(datetime(1999, 1, 1, tzinfo=UTC), 4) + _points_in(datetime(2044, 2, 1, tzinfo=UTC), 2)
    location_points_record(rider_id=rider.pk, points=stray)
    before = _rows("rider_id = %s", [rider.pk])

    result = location_partitions_ensure()

    assert result.moved_from_default == {"fleet_locationlog_p199901": 4, "fleet_locationlog_p204402": 2}
    assert {"fleet_locationlog_p199901", "fleet_locationlog_p204402"} <= set(result.created)
    assert _rows("rider_id = %s", [rider.pk]) == before
    assert _tables_of(rider.pk) == {"fleet_locationlog_p199901", "fleet_locationlog_p204402"}
    assert _rows(table="fleet_locationlog_default") == set()


def test_a_point_at_infinity_stays_in_the_default():
    rider = RiderFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fleet_locationlog (rider_id, recorded_at, lat, lon) VALUES (%s, 'infinity', 1, 1)", [rider.pk]
        )
    assert location_partitions_ensure().moved_from_default == {}
    assert _tables_of(rider.pk) == {"fleet_locationlog_default"}


# --- archive --------------------------------------------------------------------------------------


def test_only_months_entirely_older_than_the_retention_window_are_archived(tmp_path):
    rider = RiderFactory()
    now = datetime(2040, 8, 31, 12, tzinfo=UTC)  # cutoff: 2040-02-29 12:00 (six months back, day clamped)
    for month in (datetime(2040, 1, 1, tzinfo=UTC), datetime(2040, 2, 1, tzinfo=UTC)):
        _partition_create(month)
        location_points_record(rider_id=rider.pk, points=_points_in(month, 3))

    archived = location_partitions_archive(now=now)

    assert [a.partition for a in archived if a.partition.startswith("fleet_locationlog_p2040")] == [
        "fleet_locationlog_p204001"
    ]
    assert "fleet_locationlog_p204001" not in location_partitions()
    assert "fleet_locationlog_p204002" in location_partitions()


def test_archive_writes_a_gzip_csv_with_a_sha256_sidecar_then_drops_the_month(tmp_path):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 50))

    [archived] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]

    path = Path(archived.path)
    assert path.parent == tmp_path / "archive"
    assert re.fullmatch(r"fleet_locationlog_p201903\.\d{8}T\d{6}Z\.csv\.gz", path.name)
    assert archived.rows == 50
    with gzip.open(path, "rt") as csv_file:
        lines = csv_file.read().splitlines()
    assert lines[0] == ROW.replace(" ", "")
    assert len(lines) == 51
    sidecar = path.with_name(path.name + ".sha256").read_text()
    assert sidecar == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
    assert archived.sha256 == sidecar.split()[0]
    assert "fleet_locationlog_p201903" not in location_partitions()
    assert _month_rows(month) == set()
    assert [p.name for p in (tmp_path / "archive").iterdir() if p.name.startswith(".")] == []


def test_archive_drop_restore_round_trip_gives_identical_rows(tmp_path):
    first, second = RiderFactory(), RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=first.pk, points=_points_in(month, 80))
    location_points_record(rider_id=second.pk, points=_points_in(month, 40, hour_step=11))
    before = _month_rows(month)
    assert len(before) == 120

    [archived] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]
    assert _month_rows(month) == set()

    restored = location_archive_restore(path=Path(archived.path))

    assert (restored.rows_in_file, restored.inserted, restored.partitions) == (120, 120, ["fleet_locationlog_p201903"])
    assert _month_rows(month) == before
    assert _rows(table="fleet_locationlog_p201903") == before


def test_restoring_twice_skips_the_points_already_there(tmp_path):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 10))
    [archived] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]
    location_archive_restore(path=Path(archived.path))

    again = location_archive_restore(path=Path(archived.path))

    assert (again.inserted, again.duplicates) == (0, 10)
    assert len(_month_rows(month)) == 10


def test_a_failed_export_keeps_the_partition_and_leaves_no_archive(tmp_path, monkeypatch):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 30))
    before = _month_rows(month)
    writes = []

    def disk_full_after_first_write(self, data):
        if writes:
            raise OSError(28, "No space left on device")
        writes.append(len(data))
        return original_write(self, data)

    original_write = gzip.GzipFile.write
    monkeypatch.setattr(gzip.GzipFile, "write", disk_full_after_first_write)
    with pytest.raises(OSError, match="No space left"):
        location_partitions_archive()

    assert writes, "the export started before it failed"
    assert "fleet_locationlog_p201903" in location_partitions()
    assert _month_rows(month) == before
    assert list((tmp_path / "archive").iterdir()) == []


def test_a_failed_checksum_write_keeps_the_partition_and_leaves_no_archive(tmp_path, monkeypatch):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 30))
    before = _month_rows(month)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    link = os.link

    def sidecar_link_fails(source, target):
        if str(target).endswith(".sha256"):
            raise OSError(5, "Input/output error")
        return link(source, target)

    # The archive is already in place when putting its checksum beside it fails.
    monkeypatch.setattr(os, "link", sidecar_link_fails)
    with pytest.raises(OSError, match="Input/output"):
        location_partitions_archive()

    assert "fleet_locationlog_p201903" in location_partitions()
    assert _month_rows(month) == before
    assert list(archive_dir.iterdir()) == []


def test_an_unwritable_archive_folder_drops_nothing(tmp_path, settings):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 5))
    (tmp_path / "not-a-folder").write_text("a file where the archive folder should be")
    settings.LOCATION_ARCHIVE_DIR = tmp_path / "not-a-folder" / "archive"

    with pytest.raises(NotADirectoryError):
        location_partitions_archive()

    assert "fleet_locationlog_p201903" in location_partitions()
    assert len(_month_rows(month)) == 5


def test_archiving_a_month_again_keeps_the_earlier_archive(tmp_path):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 5))
    [first] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]
    location_points_record(rider_id=rider.pk, points=_points_in(month + timedelta(days=20), 2))  # strays
    location_partitions_ensure()

    later = timezone.now() + timedelta(seconds=2)  # archive names carry the second
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: later)
        [second] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]

    assert first.path != second.path
    assert (first.rows, second.rows) == (5, 2)
    assert all(Path(p).exists() for p in (first.path, second.path))


# --- restore --------------------------------------------------------------------------------------


def test_restore_refuses_an_archive_whose_checksum_does_not_match(tmp_path):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 5))
    [archived] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]
    path = Path(archived.path)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))

    with pytest.raises(ArchiveError, match="SHA-256"):
        location_archive_restore(path=path)
    assert "fleet_locationlog_p201903" not in location_partitions()


def test_restore_refuses_an_archive_without_its_checksum_file(tmp_path):
    path = tmp_path / "fleet_locationlog_p201903.csv.gz"
    with gzip.open(path, "wt") as csv_file:
        csv_file.write(ROW.replace(" ", "") + "\n")
    with pytest.raises(ArchiveError, match="incomplete"):
        location_archive_restore(path=path)


def test_the_restore_command_prints_progress_and_the_count(tmp_path, capsys):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 12))
    [archived] = [a for a in location_partitions_archive() if a.partition == "fleet_locationlog_p201903"]

    call_command("restore_location_archive", archived.path)

    out = capsys.readouterr().out
    assert "matches its checksum file" in out
    assert "12 rows in the file" in out
    assert "12 rows in the archive: 12 restored into fleet_locationlog_p201903, 0 already present" in out
    assert "older than the retention window" in out
    with pytest.raises(CommandError, match="no such file"):
        call_command("restore_location_archive", str(tmp_path / "missing.csv.gz"))


# --- pruning --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(None, id="now"),
        pytest.param(datetime(2031, 3, 17, 9, 0, tzinfo=UTC), id="mid-month"),
        pytest.param(datetime(2031, 3, 1, 6, 0, tzinfo=UTC), id="just-after-a-month-starts"),
    ],
)
def test_a_riders_last_24_hours_read_only_the_partitions_of_those_hours(now):
    """Plan-time pruning: the plan names the month(s) the 24 hours touch and no other table.

    The window is closed above (points may be up to 2 minutes in the future, per ingest validation): with a
    lower bound only, PostgreSQL must also visit every later month and the default (next test).
    """
    now = now or timezone.now()
    since, until = now - timedelta(hours=24), now + timedelta(minutes=2)
    location_partitions_ensure(now=now)
    _partition_create(since)  # in production the retention window keeps the months before this one
    rider = RiderFactory()

    touched = _plan_partitions(
        LocationLog.objects.filter(rider_id=rider.pk, recorded_at__gte=since, recorded_at__lte=until)
    )

    assert touched == {partition_name(since), partition_name(until)}
    assert 1 <= len(touched) <= 2
    assert "fleet_locationlog_default" not in touched


def test_the_track_selector_reads_only_the_partitions_of_the_last_24_hours():
    now = timezone.now()
    location_partitions_ensure(now=now)
    _partition_create(now - timedelta(hours=24))
    rider = RiderFactory()

    touched = _plan_partitions(rider_track_recent(rider_id=rider.pk))

    assert touched == {partition_name(now - timedelta(hours=24)), partition_name(now + timedelta(minutes=2))}
    assert "fleet_locationlog_default" not in touched


def test_a_window_open_above_prunes_older_months_but_visits_later_ones_and_the_default():
    now = timezone.now()
    since = now - timedelta(hours=24)
    older = months_shift(month_start(since), -1)
    location_partitions_ensure(now=now)
    _partition_create(since)
    _partition_create(older)
    months = {name for name in location_partitions() if name != "fleet_locationlog_default"}
    later = {name for name in months if name >= partition_name(since)}

    touched = _plan_partitions(LocationLog.objects.filter(rider_id=1, recorded_at__gte=since))

    assert touched == later | {"fleet_locationlog_default"}
    assert len(later) == 4 or len(later) == 5  # this month and three ahead, plus yesterday's when it is another
    assert partition_name(older) not in touched


# --- concurrency ----------------------------------------------------------------------------------


@pytest.fixture
def _drop_partitions_made_by_the_test(transactional_db):
    before = set(location_partitions())
    yield
    with connection.cursor() as cursor:
        for name in set(location_partitions()) - before:
            cursor.execute(f'DROP TABLE "{name}"')


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_drop_partitions_made_by_the_test")
def test_concurrent_ensures_create_each_month_once_and_lose_no_point():
    rider = RiderFactory()
    location_points_record(rider_id=rider.pk, points=_points_in(datetime(2061, 2, 1, tzinfo=UTC), 10))
    before = _rows("rider_id = %s", [rider.pk])
    start = threading.Barrier(4)
    results, errors = [], []

    def run() -> None:
        try:
            start.wait()
            results.append(location_partitions_ensure(now=datetime(2061, 1, 9, tzinfo=UTC)))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    created = [name for result in results for name in result.created]
    assert sorted(created) == [
        "fleet_locationlog_p206101",
        "fleet_locationlog_p206102",
        "fleet_locationlog_p206103",
        "fleet_locationlog_p206104",
    ]
    assert sum(sum(result.moved_from_default.values()) for result in results) == 10
    assert _rows("rider_id = %s", [rider.pk]) == before
    assert _tables_of(rider.pk) == {"fleet_locationlog_p206102"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_drop_partitions_made_by_the_test")
def test_creating_a_month_while_points_of_it_stream_in_loses_none():
    rider = RiderFactory()
    month = datetime(2062, 3, 1, tzinfo=UTC)
    batches = [_points_in(month + timedelta(minutes=i), 20, hour_step=1) for i in range(40)]
    halfway, errors = threading.Event(), []

    def ingest() -> None:
        try:
            for number, batch in enumerate(batches):
                location_points_record(rider_id=rider.pk, points=batch)
                if number == len(batches) // 2:
                    halfway.set()
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)
        finally:
            halfway.set()
            connections.close_all()

    thread = threading.Thread(target=ingest)
    thread.start()
    halfway.wait(timeout=30)
    result = location_partitions_ensure(now=month, months_ahead=0)
    thread.join(timeout=60)

    assert errors == []
    assert result.moved_from_default["fleet_locationlog_p206203"] >= (len(batches) // 2 + 1) * 20
    assert LocationLog.objects.filter(rider=rider).count() == 40 * 20
    assert _tables_of(rider.pk) == {"fleet_locationlog_p206203"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_drop_partitions_made_by_the_test")
def test_a_long_reader_holding_the_log_makes_the_drop_time_out_with_nothing_lost(tmp_path, monkeypatch):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    _partition_create(month)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 25))
    reading, done = threading.Event(), threading.Event()

    def long_report() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM fleet_locationlog")
                reading.set()
                done.wait(timeout=30)
        finally:
            reading.set()
            connections.close_all()

    monkeypatch.setattr(partitions, "LOCK_TIMEOUT_MS", 200)
    reader = threading.Thread(target=long_report)
    reader.start()
    reading.wait(timeout=30)
    try:
        with pytest.raises(OperationalError, match="lock timeout"):
            location_partitions_archive()
    finally:
        done.set()
        reader.join(timeout=30)

    assert "fleet_locationlog_p201903" in location_partitions()
    assert len(_month_rows(month)) == 25
    assert list((tmp_path / "archive").iterdir()) == []


# --- tasks ----------------------------------------------------------------------------------------


def test_the_lifecycle_tasks_are_registered_with_celery():
    celery_app.loader.import_default_modules()
    assert {"fleet.ensure_location_partitions", "fleet.archive_location_partitions"} <= set(celery_app.tasks)


def test_the_lifecycle_tasks_return_results_the_result_backend_can_store(tmp_path):
    rider = RiderFactory()
    month = datetime(2019, 3, 1, tzinfo=UTC)
    location_points_record(rider_id=rider.pk, points=_points_in(month, 3))  # a stray, kept by the default

    ensured = ensure_location_partitions_task.apply().get()
    archived = archive_location_partitions_task.apply().get()

    assert json.loads(json.dumps(ensured))["moved_from_default"] == {"fleet_locationlog_p201903": 3}
    assert [(a["partition"], a["rows"]) for a in json.loads(json.dumps(archived))] == [("fleet_locationlog_p201903", 3)]
    assert Path(archived[0]["path"]).parent == tmp_path / "archive"


def test_every_partition_has_the_recorded_at_brin_index_months_created_later_too():
    location_partitions_ensure(now=timezone.now() + timedelta(days=200))  # months the migration never saw
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, bool_or(ix.indisvalid AND am.amname = 'brin'
                                      AND pg_get_indexdef(ix.indexrelid) LIKE '%%(recorded_at)%%')
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            LEFT JOIN pg_index ix ON ix.indrelid = c.oid
            LEFT JOIN pg_class ic ON ic.oid = ix.indexrelid
            LEFT JOIN pg_am am ON am.oid = ic.relam
            WHERE i.inhparent = 'fleet_locationlog'::regclass
            GROUP BY c.relname
            """
        )
        partitions = dict(cursor.fetchall())
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'locationlog_recorded_brin'::regclass")
        assert cursor.fetchone() == (True,)
    assert len(partitions) >= 9  # the migration's months, the ones ensured later, the default
    assert "fleet_locationlog_default" in partitions
    assert all(partitions.values()), partitions
