"""The periodic schedule lives in code, is registered in django-celery-beat by a migration, and what ops
change there survives later migrates."""

from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from config.celery import app as celery_app
from config.schedule import SCHEDULE, sync_schedule

pytestmark = pytest.mark.django_db


def test_every_scheduled_task_is_registered_in_beat_after_migrate():
    for entry in SCHEDULE:
        task = PeriodicTask.objects.get(name=entry.name)
        assert task.task == entry.task
        assert task.crontab is not None if entry.crontab else task.interval.every == entry.every_s
        assert task.expire_seconds == entry.expires_s


def test_every_scheduled_task_exists_in_celery():
    celery_app.loader.import_default_modules()
    for entry in SCHEDULE:
        assert entry.task in celery_app.tasks, entry.task


def test_a_sync_keeps_what_ops_paused_and_re_timed():
    entry = SCHEDULE[0]
    hourly = CrontabSchedule.objects.create(minute="5", hour="*")
    PeriodicTask.objects.filter(name=entry.name).update(enabled=False, expire_seconds=9999, crontab=hourly)
    assert sync_schedule() == 0
    task = PeriodicTask.objects.get(name=entry.name)
    assert (task.enabled, task.expire_seconds, task.crontab) == (False, 9999, hourly)


def test_an_entry_missing_from_the_database_is_added_and_a_running_beat_told():
    entry = SCHEDULE[-1]
    PeriodicTask.objects.filter(name=entry.name).delete()
    before = PeriodicTasks.last_change()
    assert sync_schedule() == 1
    assert PeriodicTask.objects.get(name=entry.name).task == entry.task
    assert PeriodicTasks.last_change() > before


def test_the_migration_registered_the_schedule_with_historical_models():
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("fleet", "0006_register_periodic_tasks"))
    PeriodicTask.objects.filter(name__startswith="fleetops.").delete()
    assert sync_schedule(apps=state.apps) == len(SCHEDULE)
    assert set(PeriodicTask.objects.filter(name__startswith="fleetops.").values_list("task", flat=True)) == {
        entry.task for entry in SCHEDULE
    }


def test_entries_removed_from_code_are_disabled():
    PeriodicTask.objects.create(
        name="fleetops.gone.task", task="gone.task", interval=None, crontab=PeriodicTask.objects.first().crontab
    )
    assert sync_schedule() == 1
    assert PeriodicTask.objects.get(name="fleetops.gone.task").enabled is False


def test_the_offer_sweep_migration_re_times_the_entry_a_database_registered_every_minute():
    migration = import_module("orders.migrations.0005_offer_expiry_sweep_every_five_seconds")
    every_minute = CrontabSchedule.objects.create(minute="*")
    PeriodicTask.objects.filter(name=migration.NAME).update(crontab=every_minute, interval=None, expire_seconds=50)
    state = MigrationExecutor(connection).loader.project_state(("orders", "0005_offer_expiry_sweep_every_five_seconds"))

    migration.every_five_seconds(state.apps, None)

    task = PeriodicTask.objects.get(name=migration.NAME)
    assert (task.interval.every, task.interval.period, task.crontab, task.expire_seconds) == (5, "seconds", None, 4)
