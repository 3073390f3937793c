"""Celery tasks of the wallet: thin, named, each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from wallet import services


@shared_task(
    name="wallet.reconcile",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def reconcile_task() -> int:
    """Safe to run again: each run only reads the ledger and records what it found. Returns the drift count."""
    return services.ledger_reconcile().drift_count
