"""A BRIN index on the location log's ``recorded_at``: fleet-wide time-range reads (distance per day, the
default-partition sweep, archive checks) skip the pages outside the range instead of reading the month.

The primary key ``(rider_id, recorded_at)`` serves one rider's reads; a range over every rider could only
scan the partitions. Points arrive roughly in time order, which is what BRIN needs, and it costs a few pages
per partition and next to nothing on insert.

Built the way a live table allows: the index on the parent ``ON ONLY`` (no partition touched), then each
partition's index ``CONCURRENTLY`` (GPS ingest keeps writing) and attached to it. Partitions created later
get it from the parent. Not atomic: ``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations

PARENT = "fleet_locationlog"
INDEX = "locationlog_recorded_brin"


def create(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON ONLY {PARENT} USING brin (recorded_at)")
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass ORDER BY c.relname
            """,
            [PARENT],
        )
        for (partition,) in cursor.fetchall():
            child = f"{partition}_recorded_brin"
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {child} ON {partition} USING brin (recorded_at)")
            cursor.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass AND inhparent = %s::regclass", [child, INDEX]
            )
            if cursor.fetchone() is None:
                cursor.execute(f"ALTER INDEX {INDEX} ATTACH PARTITION {child}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("fleet", "0004_riderdaydistance"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(create, migrations.RunPython.noop),
                migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=f"DROP INDEX IF EXISTS {INDEX}"),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="locationlog",
                    index=BrinIndex(fields=["recorded_at"], name=INDEX),
                ),
            ],
        ),
    ]
