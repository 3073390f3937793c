"""A Celery worker killed mid-task: with acks_late the broker hands the message out again, the task runs again,
and its effect (a ledger posting) happens once. A real worker process, a real broker (a private redis-server)
and the test database (committed data: the worker is another process)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from tests.riders.factories import RiderFactory
from tests.test_faults_redis import PrivateRedis
from wallet.models import Balance, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parent.parent


def start_worker(broker_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.fault_settings",
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
    }
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "faults", "--pool", "solo", "-l", "warning"]
    with log.open("ab") as out:  # the worker's own words, shown when the test fails
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _test_database_url() -> str:
    params = connection.settings_dict
    return f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_task_whose_worker_is_killed_runs_again_and_its_posting_happens_once(tmp_path):
    from django_redis import get_redis_connection

    broker = PrivateRedis()
    broker.start()
    sender = Celery("fault-test")
    rider = RiderFactory()
    key = f"fault-worker-{rider.pk}"
    redis = get_redis_connection("default")
    log = tmp_path / "worker.log"
    worker = start_worker(broker.url, log)
    try:
        # An explicit connection: a CELERY_BROKER_URL in the environment (make test sets one) would win over
        # the app's own broker setting.
        with sender.connection_for_write(broker.url) as connection:
            sender.send_task(
                "tests.fault_post_then_linger", args=(rider.pk, key, 30), queue="faults", connection=connection
            )
        # The first run posted (committed) and lingers: kill the worker before it can acknowledge.
        wait_for(lambda: LedgerEntry.objects.filter(rider_id=rider.pk).exists(), 60, "the first run's posting")
        assert redis.get(f"fault-runs:{key}") == b"1"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

        worker = start_worker(broker.url, log)  # the message comes back after the visibility timeout
        wait_for(lambda: redis.get(f"fault-runs:{key}") == b"2", 60, "the second run")
    except AssertionError:
        print(log.read_text()[-5000:])
        raise
    finally:
        worker.kill()
        worker.wait(timeout=10)
        broker.stop()
        redis.delete(f"fault-runs:{key}")

    assert LedgerEntry.objects.filter(rider_id=rider.pk).count() == 1
    assert Balance.objects.get(rider_id=rider.pk).wallet_paise == 250_00
