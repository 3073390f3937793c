"""A task for the worker-kill fault test (tests/test_faults_worker.py), loaded only by that test's worker.

It does what a real task does to money (a ledger posting through the wallet service, idempotent by its key),
then lingers, so the test can kill the worker after the effect and before the acknowledgement: the worst
moment. Each run counts itself in Redis, so the test sees that the task ran again.
"""

from __future__ import annotations

import time

from celery import shared_task
from django_redis import get_redis_connection

from wallet.models import EntryType
from wallet.services import ledger_entry_post


@shared_task(name="tests.fault_post_then_linger")
def post_then_linger(rider_id: int, key: str, linger_s: float) -> int:
    runs = int(get_redis_connection("default").incr(f"fault-runs:{key}"))
    ledger_entry_post(rider_id=rider_id, entry_type=EntryType.INCENTIVE, amount_paise=250_00, idempotency_key=key)
    time.sleep(linger_s if runs == 1 else 0)
    return runs
