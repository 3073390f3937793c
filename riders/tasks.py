"""Celery tasks of the riders app: thin, named, each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from riders import services


@shared_task(
    name="riders.hos_enforce",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def hos_enforce_task() -> int:
    """Idempotent: a rider already moved is not moved again."""
    return services.riders_hos_enforce()


@shared_task(
    name="riders.stale_auto_off",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def stale_auto_off_task() -> int:
    """Idempotent: a rider already moved is no longer on duty, so is not moved again."""
    return services.riders_stale_auto_off()
