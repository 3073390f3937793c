DROP FUNCTION IF EXISTS fleet_locationlog_partitions_ensure(integer);
DROP FUNCTION IF EXISTS fleet_locationlog_partition_ensure(timestamptz);
DROP TABLE IF EXISTS fleet_locationlog;
