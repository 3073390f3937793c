"""The periodic schedule lives in code and is synced into django-celery-beat on migrate."""

import pytest
from django_celery_beat.models import PeriodicTask

from config.celery import app as celery_app
from config.schedule import SCHEDULE, sync_schedule

pytestmark = pytest.mark.django_db


def test_every_scheduled_task_is_registered_in_beat_after_migrate():
    for entry in SCHEDULE:
        task = PeriodicTask.objects.get(name=entry.name)
        assert task.task == entry.task
        assert task.crontab is not None
        assert task.expire_seconds == entry.expires_s


def test_every_scheduled_task_exists_in_celery():
    celery_app.loader.import_default_modules()
    for entry in SCHEDULE:
        assert entry.task in celery_app.tasks, entry.task


def test_a_sync_keeps_what_ops_paused_and_restores_the_timing():
    entry = SCHEDULE[0]
    PeriodicTask.objects.filter(name=entry.name).update(enabled=False, expire_seconds=9999)
    sync_schedule()
    task = PeriodicTask.objects.get(name=entry.name)
    assert task.enabled is False
    assert task.expire_seconds == entry.expires_s


def test_entries_removed_from_code_are_disabled():
    PeriodicTask.objects.create(
        name="fleetops.gone.task", task="gone.task", interval=None, crontab=PeriodicTask.objects.first().crontab
    )
    sync_schedule()
    assert PeriodicTask.objects.get(name="fleetops.gone.task").enabled is False
