"""The task policy every FleetOps Celery task shares: one base class, not options repeated per task.

``FleetTask`` is the Celery app's task class (``config/celery.py``), so every ``@shared_task`` gets:

- a retry on *transient* errors only (the database or Redis unreachable, a lock or statement timeout),
  with exponential backoff (1, 2, 4 s, jittered, capped) and at most ``MAX_RETRIES`` retries;
  anything else is a bug and fails at once, visible in admin (*Task results*);
- ``acks_late``: the message is acknowledged only after the task returned, so a worker that dies mid-task
  loses no work (the broker redelivers it). Every task must therefore be idempotent; each says how in its
  docstring.

A task may still set any of these itself (a keyword on ``@shared_task`` wins over the class).
Which queue a task goes to is ``CELERY_TASK_ROUTES`` in settings (``urgent``, ``default``, ``bulk``).
"""

from __future__ import annotations

from celery import Task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Errors a later attempt can get past: the server down or restarting, a connection dropped, a lock or
#: statement timeout (psycopg's LockNotAvailable and QueryCanceled reach Django as OperationalError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
)
MAX_RETRIES = 3


class FleetTask(Task):
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = MAX_RETRIES
    acks_late = True
