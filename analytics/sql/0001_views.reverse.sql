DROP MATERIALIZED VIEW IF EXISTS analytics_rider_performance_summary;
DROP MATERIALIZED VIEW IF EXISTS analytics_rider_leaderboard;
DROP MATERIALIZED VIEW IF EXISTS analytics_dashboard_stats;
