"""Celery tasks of the riders app: thin, named, each calls one service. Retries on transient errors and
``acks_late`` come from ``config.tasks.FleetTask``."""

from __future__ import annotations

from celery import shared_task

from riders import services


@shared_task(name="riders.hos_enforce")
def hos_enforce_task() -> int:
    """Idempotent: a rider already moved is not moved again."""
    return services.riders_hos_enforce()


@shared_task(name="riders.stale_auto_off")
def stale_auto_off_task() -> int:
    """Idempotent: a rider already moved is no longer on duty, so is not moved again."""
    return services.riders_stale_auto_off()
