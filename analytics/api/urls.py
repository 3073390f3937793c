"""Analytics API: dashboard stats and leaderboards read from the materialized views."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
