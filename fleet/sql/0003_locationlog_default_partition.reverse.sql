-- Back to 0002: every point of the DEFAULT partition moves into the partition of its month first, so
-- dropping the default loses nothing; a point that has no month (+/-infinity) stops the migration.
SELECT fleet_locationlog_default_drain();
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM fleet_locationlog_default) THEN
        RAISE EXCEPTION 'fleet_locationlog_default still holds points at +/-infinity; move or delete them first';
    END IF;
END;
$$;
DROP TABLE fleet_locationlog_default;
DROP FUNCTION fleet_locationlog_default_drain();
DROP FUNCTION fleet_locationlog_default_ensure();

-- 0002's version, verbatim.
CREATE OR REPLACE FUNCTION fleet_locationlog_partition_ensure(p_month timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    month_start timestamp := date_trunc('month', p_month AT TIME ZONE 'UTC');
    partition_name text := 'fleet_locationlog_p' || to_char(month_start, 'YYYYMM');
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF fleet_locationlog FOR VALUES FROM (%L) TO (%L)',
        partition_name,
        (month_start AT TIME ZONE 'UTC'),
        ((month_start + interval '1 month') AT TIME ZONE 'UTC')
    );
    RETURN partition_name;
END;
$$;

DROP FUNCTION fleet_locationlog_lifecycle_lock();
