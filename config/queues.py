"""The Celery queues and how many messages wait in each (for the metrics endpoint and ops).

Tasks are routed by name in ``CELERY_TASK_ROUTES`` (settings): ``urgent`` for offers, assignment and SOS
fan-out, ``bulk`` for refreshes, partitions, archival, reconciliation and distances, ``default`` for the
rest. The README says how to run a worker per queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

URGENT = "urgent"
DEFAULT = "default"
BULK = "bulk"
QUEUES: tuple[str, ...] = (URGENT, DEFAULT, BULK)


def queue_depths(queues: Iterable[str] = QUEUES) -> dict[str, int]:
    """Messages waiting in each queue on the Redis broker (``CELERY_BROKER_URL``), not yet taken by a worker.

    Celery's Redis transport keeps a queue as a list named after it, plus one list per priority step when
    messages carry a priority (``<queue>\\x06\\x16<step>``); the key names come from kombu's own channel, so
    a ``global_keyprefix`` or other steps in the transport options are followed. One pipeline of LLENs.
    Messages a worker has taken but not acknowledged yet (``acks_late``) are not waiting and not counted.
    Raises the broker's error (``kombu.exceptions.OperationalError`` or redis' ``ConnectionError``) when it
    is unreachable: the caller decides what a scrape shows then.
    """
    from config.celery import app

    names = list(dict.fromkeys(queues))
    # One quick try: a scrape or an ops page must answer fast when the broker is down, not retry for seconds.
    quick = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.2}
    with app.connection_for_read(transport_options=quick) as connection:
        channel: Any = connection.default_channel  # kombu's Redis channel: its key naming and client
        keys = {
            name: list(dict.fromkeys(channel._q_for_pri(name, step) for step in channel.priority_steps))
            for name in names
        }
        with channel.client.pipeline(transaction=False) as pipe:
            for name in names:
                for key in keys[name]:
                    pipe.llen(key)
            lengths = iter(pipe.execute())
    return {name: sum(next(lengths) for _ in keys[name]) for name in names}
