DROP MATERIALIZED VIEW IF EXISTS analytics_rider_performance_summary;
DROP MATERIALIZED VIEW IF EXISTS analytics_rider_leaderboard;
DROP MATERIALIZED VIEW IF EXISTS analytics_dashboard_stats;
DROP FUNCTION IF EXISTS analytics_local_midnight(integer);
