"""The location log's partition lifecycle: months created ahead, old months archived, archives restored.

The table is range-partitioned by calendar month (UTC) on ``recorded_at`` (``fleet/sql/0002_*.sql``) with a
DEFAULT partition (``fleet/sql/0003_*.sql``) so a point outside every month is kept, never refused. The SQL
functions create a month (moving the default's points of that month into it); this module decides which
months, archives and restores. Every change to the set of partitions takes one transaction-scoped advisory
lock (``fleet_locationlog_lifecycle_lock()``), so concurrent or repeated runs queue instead of colliding.
``docs/partitions.md`` tells the whole story.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from psycopg import sql

logger = logging.getLogger(__name__)

PARENT_TABLE = "fleet_locationlog"
ARCHIVE_SUFFIX = ".csv.gz"
SIDECAR_SUFFIX = ".sha256"
_MONTHLY_PARTITION = re.compile(r"^fleet_locationlog_p(\d{4})(\d{2})$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

#: How long a lifecycle step waits for a table lock before giving up (and the task retrying later).
#: Waiting for ACCESS EXCLUSIVE on the log queues every GPS insert behind it, so the wait stays short.
LOCK_TIMEOUT_MS = 5_000
#: Bytes moved per read while streaming archives (compressed on the way out, uncompressed on the way in).
CHUNK_BYTES = 1024 * 1024
#: The restore reports progress every this many uncompressed bytes.
PROGRESS_EVERY_BYTES = 64 * 1024 * 1024


class ArchiveError(Exception):
    """An archive could not be written, verified or read back; nothing was dropped or loaded."""


@dataclass(frozen=True)
class PartitionsEnsured:
    months: list[str]
    created: list[str]
    moved_from_default: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionArchived:
    partition: str
    path: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class ArchiveRestored:
    path: str
    rows_in_file: int
    inserted: int
    partitions: list[str]

    @property
    def duplicates(self) -> int:
        return self.rows_in_file - self.inserted


# --- Months -------------------------------------------------------------------------------------------


def month_start(at: datetime) -> datetime:
    """Midnight UTC of the first day of the (UTC) month holding ``at``: the partitions' lower bounds."""
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def months_shift(at: datetime, months: int) -> datetime:
    """``at`` moved by whole calendar months, the day clamped to the target month's length (31 Aug - 6 = 28/29 Feb)."""
    index = at.year * 12 + at.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def partition_name(month: datetime) -> str:
    return f"{PARENT_TABLE}_p{month_start(month):%Y%m}"


def location_retention_cutoff(*, now: datetime | None = None, retention_months: int | None = None) -> datetime:
    """The oldest instant the log keeps: ``now`` minus ``LOCATION_RETENTION_MONTHS`` calendar months.

    A month partition is archived once it ends at or before this instant, so every point at or after it
    (the oldest the ingest API accepts) still has its partition.
    """
    months = settings.LOCATION_RETENTION_MONTHS if retention_months is None else retention_months
    if months < 1:
        raise ImproperlyConfigured(f"LOCATION_RETENTION_MONTHS must be at least 1, got {months}")
    return months_shift((now or timezone.now()).astimezone(UTC), -months)


def archive_dir() -> Path:
    return Path(settings.LOCATION_ARCHIVE_DIR)


def sidecar_path(archive: Path) -> Path:
    return archive.with_name(archive.name + SIDECAR_SUFFIX)


# --- Catalog ------------------------------------------------------------------------------------------


def _partitions(cursor: CursorWrapper) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
        [PARENT_TABLE],
    )
    return [row[0] for row in cursor.fetchall()]


def _monthly_partitions(cursor: CursorWrapper) -> dict[str, datetime]:
    """Month partitions by name, with their month's first instant (parsed from the name the SQL gives them)."""
    months: dict[str, datetime] = {}
    for name in _partitions(cursor):
        if match := _MONTHLY_PARTITION.match(name):
            months[name] = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
    return months


def location_partitions() -> list[str]:
    """Every attached partition of the location log (months and the default), by name."""
    with connection.cursor() as cursor:
        return _partitions(cursor)


def _lifecycle_lock(cursor: CursorWrapper) -> None:
    """Takes the lifecycle's advisory lock (waiting for another run to finish), then bounds table-lock waits."""
    cursor.execute("SELECT fleet_locationlog_lifecycle_lock()")
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{LOCK_TIMEOUT_MS}ms"])


def _partition_ensure(cursor: CursorWrapper, month: datetime) -> str:
    cursor.execute("SELECT fleet_locationlog_partition_ensure(%s)", [month])
    name: str = cursor.fetchone()[0]
    return name


# --- Ensure -------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def location_partitions_ensure(*, months_ahead: int | None = None, now: datetime | None = None) -> PartitionsEnsured:
    """Creates the DEFAULT partition, moves every point found in it into its month (creating that month), and
    creates the partitions of this month and the next ``LOCATION_PARTITION_MONTHS_AHEAD`` months.

    Idempotent: a second run creates nothing. Takes the lifecycle advisory lock, and ACCESS EXCLUSIVE on the
    log only while creating a missing month (so normally once a month, for a moment).
    """
    ahead = settings.LOCATION_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    first = month_start(now or timezone.now())
    with connection.cursor() as cursor:
        _lifecycle_lock(cursor)
        before = set(_partitions(cursor))
        cursor.execute("SELECT fleet_locationlog_default_ensure()")
        # Drained first, so the points moved are counted (creating a month moves them silently too).
        cursor.execute("SELECT partition_name, moved_rows FROM fleet_locationlog_default_drain()")
        moved = {name: int(rows) for name, rows in cursor.fetchall()}
        months = [_partition_ensure(cursor, months_shift(first, k)) for k in range(ahead + 1)]
        created = sorted(set(_partitions(cursor)) - before)
    for name in created:
        logger.info("location log: created partition %s", name)
    for name, rows in moved.items():
        # Points reach the default only when their month had no partition: ingest outran this job, or a
        # writer skipped the API's time window. Worth a look, never a loss.
        logger.warning("location log: moved %d points from the default partition into %s", rows, name)
    return PartitionsEnsured(months=months, created=created, moved_from_default=moved)


# --- Archive ------------------------------------------------------------------------------------------


def location_partitions_archive(
    *, now: datetime | None = None, retention_months: int | None = None, directory: Path | None = None
) -> list[PartitionArchived]:
    """Archives, oldest first, every month partition that ends at or before the retention cutoff.

    Each month is its own transaction (see ``_partition_archive``): a failure stops the run with the months
    before it archived and the failing one untouched; the next run picks up from there.
    """
    cutoff = location_retention_cutoff(now=now, retention_months=retention_months)
    target = directory or archive_dir()
    with connection.cursor() as cursor:
        months = _monthly_partitions(cursor)
    due = sorted(name for name, start in months.items() if months_shift(start, 1) <= cutoff)
    archived = []
    for name in due:
        result = _partition_archive(partition=name, directory=target)
        if result is not None:
            archived.append(result)
    return archived


def _partition_archive(*, partition: str, directory: Path) -> PartitionArchived | None:
    """Exports one month to ``<directory>/<partition>.<UTC time>.csv.gz`` with a SHA-256 sidecar, then detaches
    and drops it. The time in the name keeps every archive of a month (a month restored, or stray points of
    it drained from the default, is archived again later) instead of overwriting an earlier one.

    Order: export to a hidden temporary file, read the file back (rows and checksum), compare its rows with
    the partition's, write the sidecar to a temporary file, rename the archive then the sidecar into place,
    and only then DETACH and DROP in the same transaction. Writes into the month are blocked (SHARE lock)
    from the export to the drop, so the file holds exactly the rows dropped. A failure up to the DROP rolls
    the transaction back and removes every file this attempt wrote, so nothing is dropped and no archive is
    left behind; only when the COMMIT itself fails (its outcome unknown) are the complete files kept.
    Returns None when another run archived the month first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"{partition}.{timezone.now():%Y%m%dT%H%M%SZ}{ARCHIVE_SUFFIX}"
    sidecar = sidecar_path(archive)
    staged: list[Path] = []
    archive_in_place = sidecar_in_place = dropped = False
    try:
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            _lifecycle_lock(cursor)
            if partition not in _monthly_partitions(cursor):
                return None
            table = sql.Identifier(partition)
            cursor.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(table))
            archive_tmp = _staging_file(directory, archive.name)
            staged.append(archive_tmp)
            _copy_to_gzip(
                cursor, sql.SQL("COPY {} TO STDOUT WITH (FORMAT csv, HEADER true)").format(table), archive_tmp, archive
            )
            rows_in_file, digest = _archive_inspect(archive_tmp)
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            rows_in_table = cursor.fetchone()[0]
            if rows_in_file != rows_in_table:
                raise ArchiveError(f"{partition}: the archive holds {rows_in_file} rows, the partition {rows_in_table}")
            sidecar_tmp = _staging_file(directory, sidecar.name)
            staged.append(sidecar_tmp)
            _write_durably(sidecar_tmp, f"{digest}  {archive.name}\n".encode())
            _rename_without_overwriting(archive_tmp, archive)
            archive_in_place = True
            _rename_without_overwriting(sidecar_tmp, sidecar)
            sidecar_in_place = True
            _fsync_directory(directory)
            cursor.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(sql.Identifier(PARENT_TABLE), table))
            cursor.execute(sql.SQL("DROP TABLE {}").format(table))
            dropped = True
    except BaseException:
        for path in staged:
            path.unlink(missing_ok=True)
        if not dropped:
            if sidecar_in_place:
                sidecar.unlink()
            if archive_in_place:
                archive.unlink()
        raise
    logger.info("location log: archived %s (%d rows) to %s, sha256 %s", partition, rows_in_file, archive, digest)
    return PartitionArchived(partition=partition, path=str(archive), rows=rows_in_file, sha256=digest)


def _rename_without_overwriting(source: Path, target: Path) -> None:
    """Archives are immutable: a name already taken is an error (FileExistsError), never a replacement."""
    os.link(source, target)
    source.unlink()


def _staging_file(directory: Path, final_name: str) -> Path:
    """An empty hidden file beside the final one: never mistaken for an archive, renamed into place when complete."""
    handle, name = tempfile.mkstemp(dir=directory, prefix=f".{final_name}.", suffix=".partial")
    os.close(handle)
    return Path(name)


def _copy_to_gzip(cursor: CursorWrapper, statement: sql.Composed, path: Path, final: Path) -> None:
    """Streams ``COPY ... TO STDOUT`` into a gzip file chunk by chunk (no row ever becomes a Python object)."""
    with path.open("wb") as raw:
        # The header names the final file, not the hidden temporary one.
        with (
            gzip.GzipFile(filename=final.name, fileobj=raw, mode="wb", compresslevel=6, mtime=0) as compressed,
            cursor.copy(statement) as copy,
        ):
            for chunk in copy:
                compressed.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())


def _archive_inspect(path: Path) -> tuple[int, str]:
    """Reads an archive back from disk: its data rows (lines after the header) and its SHA-256.

    Counting lines counts rows because no column of the log is text: numbers and timestamps never hold a
    newline. A truncated gzip stream is an error.
    """
    digest = hashlib.sha256()
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    lines = 0
    with path.open("rb") as raw:
        while chunk := raw.read(CHUNK_BYTES):
            digest.update(chunk)
            lines += inflater.decompress(chunk).count(b"\n")
    lines += inflater.flush().count(b"\n")
    if not inflater.eof:
        raise ArchiveError(f"{path.name}: the gzip stream is truncated")
    if lines == 0:
        raise ArchiveError(f"{path.name}: no header line")
    return lines - 1, digest.hexdigest()


def _write_durably(path: Path, content: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    """Makes the renames durable, so a crash after the drop cannot lose the archive's directory entry."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# --- Restore ------------------------------------------------------------------------------------------


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        while chunk := raw.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def archive_verify(path: Path) -> str:
    """Checks an archive against its ``.sha256`` sidecar; returns the checksum or raises ArchiveError."""
    sidecar = sidecar_path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    if not sidecar.is_file():
        raise ArchiveError(f"{path}: no checksum file {sidecar.name}; the archive is incomplete")
    fields = sidecar.read_text(encoding="ascii").split()
    if not fields or not _SHA256_HEX.match(fields[0]):
        raise ArchiveError(f"{sidecar}: not a SHA-256 checksum file")
    actual = _sha256_of(path)
    if actual != fields[0]:
        raise ArchiveError(f"{path}: SHA-256 is {actual}, the checksum file says {fields[0]}")
    return actual


def _archive_columns(cursor: CursorWrapper, path: Path) -> list[str]:
    """The archive's header, checked against the log's columns (names from a file never reach SQL unchecked)."""
    with gzip.open(path, "rb") as compressed:
        header = compressed.readline().decode("ascii", errors="replace").strip()
    columns = header.split(",") if header else []
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [PARENT_TABLE],
    )
    known = {row[0] for row in cursor.fetchall()}
    unknown = [column for column in columns if column not in known]
    if not columns or unknown or len(set(columns)) != len(columns):
        raise ArchiveError(f"{path.name}: header {header!r} does not match the location log's columns")
    for key in ("rider_id", "recorded_at"):
        if key not in columns:
            raise ArchiveError(f"{path.name}: header lacks {key}")
    return columns


def location_archive_restore(*, path: Path, progress: Callable[[str], Any] | None = None) -> ArchiveRestored:
    """Loads an archive made by ``location_partitions_archive`` back into the log.

    Verifies the SHA-256 sidecar first; then, in one transaction under the lifecycle lock, COPYs the file into
    a temporary table, (re)creates the partition of every month it holds and inserts the rows with
    ``ON CONFLICT DO NOTHING``: points already present are skipped, so restoring twice is harmless.
    """
    say = progress or (lambda message: None)
    checksum = archive_verify(path)
    say(f"{path.name}: SHA-256 {checksum} matches its checksum file")
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        _lifecycle_lock(cursor)
        # A rider missing from riders_rider fails here, naming the rider, rather than at commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in _archive_columns(cursor, path))
        cursor.execute(
            "CREATE TEMPORARY TABLE fleet_locationlog_restore (LIKE fleet_locationlog INCLUDING DEFAULTS) "
            "ON COMMIT DROP"
        )
        loaded = 0
        copy_statement = sql.SQL("COPY fleet_locationlog_restore ({}) FROM STDIN WITH (FORMAT csv, HEADER MATCH)")
        with cursor.copy(copy_statement.format(columns)) as copy, gzip.open(path, "rb") as compressed:
            while chunk := compressed.read(CHUNK_BYTES):
                copy.write(chunk)
                if (loaded + len(chunk)) // PROGRESS_EVERY_BYTES > loaded // PROGRESS_EVERY_BYTES:
                    say(f"{path.name}: {(loaded + len(chunk)) / 2**20:.0f} MiB read")
                loaded += len(chunk)
        cursor.execute("SELECT count(*) FROM fleet_locationlog_restore")
        rows_in_file = int(cursor.fetchone()[0])
        say(f"{path.name}: {rows_in_file} rows in the file ({loaded / 2**20:.1f} MiB uncompressed)")
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', recorded_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
            "FROM fleet_locationlog_restore WHERE isfinite(recorded_at) ORDER BY 1"
        )
        months = [row[0] for row in cursor.fetchall()]
        partitions = [_partition_ensure(cursor, month) for month in months]
        insert = sql.SQL(
            "INSERT INTO fleet_locationlog ({columns}) SELECT {columns} FROM fleet_locationlog_restore "
            "ON CONFLICT (rider_id, recorded_at) DO NOTHING"
        )
        cursor.execute(insert.format(columns=columns))
        inserted = cursor.rowcount
        # ON COMMIT DROP is the safety net; dropping now lets a caller's transaction restore again.
        cursor.execute("DROP TABLE fleet_locationlog_restore")
    cutoff = location_retention_cutoff()
    if any(months_shift(month, 1) <= cutoff for month in months):
        say("note: these months are older than the retention window; the next archive run archives them again")
    logger.info("location log: restored %s: %d of %d rows inserted into %s", path, inserted, rows_in_file, partitions)
    return ArchiveRestored(path=str(path), rows_in_file=rows_in_file, inserted=inserted, partitions=partitions)
