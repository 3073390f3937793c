-- A DEFAULT partition so a point outside every month partition is kept, never refused, and partition
-- creation that moves such points into their month. Bounds stay UTC calendar months (see 0002).

-- Every change to the set of partitions (create, drain the default, archive, restore) takes this
-- transaction-scoped advisory lock first, so concurrent or repeated runs queue instead of colliding.
CREATE FUNCTION fleet_locationlog_lifecycle_lock()
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('fleet_locationlog partition lifecycle', 0));
$$;

-- Creates the DEFAULT partition if missing. A table of that name that is not attached is an error,
-- never silently taken for the guard.
CREATE FUNCTION fleet_locationlog_default_ensure()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM fleet_locationlog_lifecycle_lock();
    IF to_regclass('fleet_locationlog_default') IS NULL THEN
        LOCK TABLE fleet_locationlog IN ACCESS EXCLUSIVE MODE;
        CREATE TABLE fleet_locationlog_default PARTITION OF fleet_locationlog DEFAULT;
    ELSIF NOT EXISTS (
        SELECT 1 FROM pg_inherits
        WHERE inhparent = 'fleet_locationlog'::regclass AND inhrelid = 'fleet_locationlog_default'::regclass
    ) THEN
        RAISE EXCEPTION 'table fleet_locationlog_default exists but is not a partition of fleet_locationlog'
            USING ERRCODE = 'duplicate_table';
    END IF;
END;
$$;

-- Creates the partition holding the month of p_month (any instant in it), if missing; returns its name.
-- Replaces 0002's version: PostgreSQL refuses to create a partition while the DEFAULT partition holds
-- rows of its range, so when it does, the default is detached, the month created, the default's rows of
-- that month moved into it, and the default attached back, all in the caller's transaction.
CREATE OR REPLACE FUNCTION fleet_locationlog_partition_ensure(p_month timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    month_start timestamp := date_trunc('month', p_month AT TIME ZONE 'UTC');
    lower_bound timestamptz := month_start AT TIME ZONE 'UTC';
    upper_bound timestamptz := (month_start + interval '1 month') AT TIME ZONE 'UTC';
    partition_name text := 'fleet_locationlog_p' || to_char(month_start, 'YYYYMM');
    default_holds_month boolean := false;
BEGIN
    PERFORM fleet_locationlog_lifecycle_lock();
    IF to_regclass(partition_name) IS NOT NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM pg_inherits
            WHERE inhparent = 'fleet_locationlog'::regclass AND inhrelid = to_regclass(partition_name)
        ) THEN
            RAISE EXCEPTION 'table % exists but is not a partition of fleet_locationlog', partition_name
                USING ERRCODE = 'duplicate_table';
        END IF;
        RETURN partition_name;
    END IF;

    -- Writers lock the parent before a partition; taking the parent first cannot deadlock with them, and
    -- creating a partition needs this lock anyway. It is held to the end of the caller's transaction.
    LOCK TABLE fleet_locationlog IN ACCESS EXCLUSIVE MODE;
    IF to_regclass('fleet_locationlog_default') IS NOT NULL THEN
        SELECT EXISTS (
            SELECT 1 FROM fleet_locationlog_default WHERE recorded_at >= lower_bound AND recorded_at < upper_bound
        ) INTO default_holds_month;
    END IF;

    IF default_holds_month THEN
        ALTER TABLE fleet_locationlog DETACH PARTITION fleet_locationlog_default;
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF fleet_locationlog FOR VALUES FROM (%L) TO (%L)',
            partition_name, lower_bound, upper_bound
        );
        -- Both tables were created PARTITION OF the parent, so * lists the parent's columns in its order;
        -- the insert goes through the parent, which routes every moved row into the new month.
        WITH moved AS (
            DELETE FROM fleet_locationlog_default
            WHERE recorded_at >= lower_bound AND recorded_at < upper_bound
            RETURNING *
        )
        INSERT INTO fleet_locationlog SELECT * FROM moved;
        ALTER TABLE fleet_locationlog ATTACH PARTITION fleet_locationlog_default DEFAULT;
    ELSE
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF fleet_locationlog FOR VALUES FROM (%L) TO (%L)',
            partition_name, lower_bound, upper_bound
        );
    END IF;
    RETURN partition_name;
END;
$$;

-- Moves every point of the DEFAULT partition into the partition of its month, creating the months it
-- needs; returns each month's partition and how many points moved there. Points at +/-infinity have no
-- month and stay in the default.
CREATE FUNCTION fleet_locationlog_default_drain()
RETURNS TABLE (partition_name text, moved_rows bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    months timestamptz[];
    counts bigint[];
BEGIN
    PERFORM fleet_locationlog_lifecycle_lock();
    IF NOT EXISTS (SELECT 1 FROM fleet_locationlog_default WHERE isfinite(recorded_at)) THEN
        RETURN;
    END IF;
    -- Locked before counting so no point arrives between the count and the move.
    LOCK TABLE fleet_locationlog IN ACCESS EXCLUSIVE MODE;
    -- Read into arrays first: the default cannot be detached while a loop's query still reads it.
    SELECT array_agg(m.month_start ORDER BY m.month_start), array_agg(m.points ORDER BY m.month_start)
    INTO months, counts
    FROM (
        SELECT date_trunc('month', recorded_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month_start,
               count(*) AS points
        FROM fleet_locationlog_default
        WHERE isfinite(recorded_at)
        GROUP BY 1
    ) AS m;
    FOR i IN 1 .. array_length(months, 1) LOOP
        partition_name := fleet_locationlog_partition_ensure(months[i]);
        moved_rows := counts[i];
        RETURN NEXT;
    END LOOP;
END;
$$;

SELECT fleet_locationlog_default_ensure();
SELECT fleet_locationlog_partitions_ensure(3);
