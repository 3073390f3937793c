"""Celery tasks of the analytics app: one refresh per view, on the ``bulk`` queue (CELERY_TASK_ROUTES).

Retries on transient errors, backoff and ``acks_late`` come from ``config.tasks.FleetTask``. Each task is
idempotent (a refresh recomputes the view from the tables) and a second one at the same time is a no-op
(the view's advisory lock), so a redelivered or retried message costs at most one more refresh. The result
(refreshed or skipped, and how long it took) is kept in django-celery-results for admin.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from analytics import services
from analytics.models import MaterializedView


@shared_task(name="analytics.refresh_dashboard_stats")
def refresh_dashboard_stats_task() -> dict[str, Any]:
    return asdict(services.view_refresh(view=MaterializedView.DASHBOARD_STATS))


@shared_task(name="analytics.refresh_rider_leaderboard")
def refresh_rider_leaderboard_task() -> dict[str, Any]:
    return asdict(services.view_refresh(view=MaterializedView.RIDER_LEADERBOARD))


@shared_task(name="analytics.refresh_rider_performance_summary")
def refresh_rider_performance_summary_task() -> dict[str, Any]:
    return asdict(services.view_refresh(view=MaterializedView.RIDER_PERFORMANCE_SUMMARY))
