"""Background jobs: the refreshes registered in beat by a migration, one retry policy for every task, urgent and
bulk work on queues of their own, and the depth of each queue read from the broker."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor
from django_celery_beat.models import PeriodicTask
from redis.exceptions import ConnectionError as RedisConnectionError

from config.celery import app as celery_app
from config.queues import QUEUES, queue_depths
from config.schedule import SCHEDULE, sync_schedule
from config.tasks import MAX_RETRIES, FleetTask

REFRESHES = {
    "analytics.refresh_dashboard_stats": "*",
    "analytics.refresh_rider_leaderboard": "7",
    "analytics.refresh_rider_performance_summary": "23",
}


def _project_tasks() -> dict[str, object]:
    celery_app.loader.import_default_modules()
    return {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}


@pytest.mark.django_db
def test_the_refreshes_are_in_beat_after_migrate_on_the_bulk_queue():
    for name, minute in REFRESHES.items():
        task = PeriodicTask.objects.get(name=f"fleetops.{name}")
        assert (task.task, task.queue, task.enabled, task.crontab.minute) == (name, "bulk", True, minute)
    assert PeriodicTask.objects.get(task="analytics.refresh_rider_performance_summary").crontab.hour == "*/6"


@pytest.mark.django_db
def test_the_analytics_migration_registers_them_where_beat_had_only_the_older_tasks():
    """A database migrated before this app: its fleet migration registered the others; ours adds these."""
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("analytics", "0002_register_refresh_tasks"))
    PeriodicTask.objects.filter(task__in=REFRESHES).delete()
    assert sync_schedule(apps=state.apps) == len(REFRESHES)
    assert set(PeriodicTask.objects.filter(task__in=REFRESHES).values_list("task", flat=True)) == set(REFRESHES)


def test_every_scheduled_task_expires_before_its_next_run():
    every_minute = [entry for entry in SCHEDULE if entry.crontab == {"minute": "*"}]
    assert every_minute
    assert all(entry.expires_s < 60 for entry in every_minute)


def test_every_task_of_the_project_retries_transient_errors_three_times_with_backoff_and_acks_late():
    tasks = _project_tasks()
    assert set(REFRESHES) <= set(tasks)
    for name, task in tasks.items():
        assert isinstance(task, FleetTask), name
        assert task.acks_late is True, name
        assert task.max_retries == MAX_RETRIES, name
        assert task.retry_backoff is True, name
        assert {OperationalError, RedisConnectionError} <= set(task.autoretry_for), name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("orders.assign", "urgent"),
        ("orders.offer_expire", "urgent"),
        ("orders.offers_expire_due", "urgent"),
        ("riders.sos_escalate", "urgent"),
        ("riders.emergency_fanout", "urgent"),
        ("analytics.refresh_dashboard_stats", "bulk"),
        ("fleet.ensure_location_partitions", "bulk"),
        ("fleet.archive_location_partitions", "bulk"),
        ("fleet.rider_distances_compute", "bulk"),
        ("wallet.reconcile", "bulk"),
        ("riders.hos_enforce", "default"),
        ("riders.stale_auto_off", "default"),
    ],
)
def test_tasks_go_to_the_queue_their_name_says(task, queue):
    route = celery_app.amqp.router.route({}, task)
    assert route["queue"].name == queue


def test_every_task_of_the_project_lands_on_a_known_queue():
    for name in _project_tasks():
        assert celery_app.amqp.router.route({}, name)["queue"].name in QUEUES, name


def test_queue_depths_count_waiting_messages_of_every_priority():
    """Published through Celery itself, so the transport's own key names (priority lists included) are what
    is counted. Queues of a name of their own: the broker may be shared with a running portal."""
    names = [f"test-{uuid.uuid4().hex[:8]}-{queue}" for queue in QUEUES]
    try:
        for priority in (None, 0, 5, 9):
            celery_app.send_task("analytics.refresh_dashboard_stats", queue=names[0], priority=priority)
        celery_app.send_task("wallet.reconcile", queue=names[2])
        assert queue_depths(names) == {names[0]: 4, names[1]: 0, names[2]: 1}
    finally:
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            queue_keys = [channel._q_for_pri(name, step) for name in names for step in channel.priority_steps]
            bindings = [
                f"{prefix}{name}" for name in names for prefix in ("_kombu.binding.", "_kombu.binding_permanent.")
            ]
            channel.client.delete(*queue_keys, *bindings)
    assert settings.CELERY_TASK_DEFAULT_QUEUE in QUEUES


def test_queue_depths_of_the_three_queues_by_default():
    assert set(queue_depths()) == set(QUEUES)
