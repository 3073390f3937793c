"""Celery tasks of the wallet: thin, named, each calls one service. Retries on transient errors and
``acks_late`` come from ``config.tasks.FleetTask``; the queue from ``CELERY_TASK_ROUTES`` (bulk)."""

from __future__ import annotations

from celery import shared_task

from wallet import services


@shared_task(name="wallet.reconcile")
def reconcile_task() -> int:
    """Safe to run again: each run only reads the ledger and records what it found. Returns the drift count."""
    return services.ledger_reconcile().drift_count
