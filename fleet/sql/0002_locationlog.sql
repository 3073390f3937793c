-- GPS points, range-partitioned by calendar month (UTC) on recorded_at.
-- The primary key includes the partition key, as PostgreSQL requires, and is the natural key of a
-- point: a replayed (rider, recorded_at) is a duplicate, skipped by ON CONFLICT DO NOTHING.
CREATE TABLE fleet_locationlog (
    rider_id     bigint           NOT NULL
        CONSTRAINT fleet_locationlog_rider_id_fk REFERENCES riders_rider (id) DEFERRABLE INITIALLY DEFERRED,
    recorded_at  timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    speed_kmh    double precision NULL,
    heading_deg  smallint         NULL,
    accuracy_m   double precision NULL,
    battery_pct  smallint         NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT fleet_locationlog_pkey PRIMARY KEY (rider_id, recorded_at),
    CONSTRAINT location_in_range CHECK (lat >= -90 AND lat <= 90 AND lon >= -180 AND lon <= 180),
    CONSTRAINT location_heading_in_range CHECK (heading_deg IS NULL OR (heading_deg >= 0 AND heading_deg < 360)),
    CONSTRAINT location_battery_in_range CHECK (battery_pct IS NULL OR (battery_pct >= 0 AND battery_pct <= 100)),
    CONSTRAINT location_speed_non_negative CHECK (speed_kmh IS NULL OR speed_kmh >= 0)
) PARTITION BY RANGE (recorded_at);

-- Creates the partition holding the month of p_month (any instant in it), if missing; returns its name.
-- Bounds are UTC midnights so the partitions do not depend on the session's time zone.
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

-- Ensures the partitions of the current month and the next p_months_ahead months; returns their names.
CREATE OR REPLACE FUNCTION fleet_locationlog_partitions_ensure(p_months_ahead integer)
RETURNS SETOF text
LANGUAGE sql
AS $$
    SELECT fleet_locationlog_partition_ensure(now() + make_interval(months => m))
    FROM generate_series(0, p_months_ahead) AS m;
$$;

SELECT fleet_locationlog_partitions_ensure(2);
