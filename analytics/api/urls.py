"""Analytics API: dashboard stats and leaderboards read from the materialized views."""

from django.urls import URLPattern, URLResolver, path

from analytics.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("dashboard/stats/", views.DashboardStatsApi.as_view(), name="analytics-dashboard-stats"),
    path("leaderboard/", views.LeaderboardApi.as_view(), name="analytics-leaderboard"),
]
