"""The Celery application: Redis broker, django-celery-beat's DatabaseScheduler, settings under CELERY_."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task gets the shared retry and acknowledgement policy of config/tasks.py.
app = Celery("fleetops", task_cls="config.tasks:FleetTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id of whoever queued a task is the task's while it runs; slow statements are logged in workers too.
from config.logging import connect_signals  # noqa: E402

connect_signals()
