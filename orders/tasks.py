"""Celery tasks of the orders app: thin, named, each calls one service with ids. Retries on transient errors
and ``acks_late`` come from ``config.tasks.FleetTask``; offers and assignment go to the ``urgent`` queue.

The per-order tasks run once per order or offer, so they keep no result (``ignore_result``): a row in the
result backend for each would cost the database more than the task itself. Outcomes are in the orders' events.
"""

from __future__ import annotations

from celery import shared_task

from orders import assignment


@shared_task(name="orders.assign", ignore_result=True)
def assign_task(order_id: int) -> int | None:
    """The automatic assignment queued at intake and after a failed offer; returns the rider offered it.

    Idempotent: an order no longer CREATED is left alone. Nobody eligible flags the order (no error).
    """
    result = assignment.order_assign_next(order_id=order_id)
    return result.offer.rider_id if result is not None else None


@shared_task(name="orders.offer_expire", ignore_result=True)
def offer_expire_task(offer_id: int) -> bool:
    """One offer's expiry. Nothing schedules it any more (the sweep below expires offers); it stays registered
    so that messages a previous release queued for a deadline still run. Idempotent: an offer already
    answered, withdrawn or expired is left alone."""
    return assignment.offer_expire(offer_id=offer_id)


@shared_task(name="orders.offers_expire_due")
def offers_expire_due_task() -> int:
    """Beat's offer expiry, every few seconds (``assignment.offers_expire_due``); idempotent."""
    return assignment.offers_expire_due()
