"""The wallet summary is cached in Redis, invalidated when a posting commits (not before, not on rollback), and
a Redis failure costs a database read, never an error."""

import logging

import pytest
from django.db import transaction
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.riders.factories import RiderFactory
from tests.wallet.factories import FinanceUserFactory, earn
from wallet import services
from wallet.cache import summary_cached, summary_invalidate
from wallet.selectors import wallet_summary

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 0.2},
    }
}


@pytest.fixture
def rider():
    return RiderFactory()


def test_the_first_read_misses_and_the_second_hits(rider):
    earn(rider.pk, 1_000)
    first = wallet_summary(rider_id=rider.pk)
    second = wallet_summary(rider_id=rider.pk)
    assert (first.hit, second.hit) == (False, True)
    assert second.value["wallet_paise"] == 1_000


def test_a_posting_invalidates_on_commit(rider, django_capture_on_commit_callbacks):
    wallet_summary(rider_id=rider.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        earn(rider.pk, 2_500)
    # Committed in the database but the callbacks have not run: the cache still answers the old summary...
    assert wallet_summary(rider_id=rider.pk).value["wallet_paise"] == 0
    for callback in callbacks:
        callback()
    # ...and once the commit's callbacks ran, the next read is a miss with the new balance.
    after = wallet_summary(rider_id=rider.pk)
    assert (after.hit, after.value["wallet_paise"]) == (False, 2_500)
    # The new generation (written by the invalidation's own connection) is the one the next read meets.
    again = wallet_summary(rider_id=rider.pk)
    assert (again.hit, again.value["wallet_paise"]) == (True, 2_500)


def test_a_rolled_back_posting_does_not_invalidate(rider, django_capture_on_commit_callbacks):
    wallet_summary(rider_id=rider.pk)

    def post_then_fail() -> None:
        with transaction.atomic():
            earn(rider.pk, 2_500)
            raise RuntimeError("the caller's transaction fails after the posting")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        post_then_fail()
    assert callbacks == []
    cached = wallet_summary(rider_id=rider.pk)
    assert (cached.hit, cached.value["wallet_paise"]) == (True, 0)


def test_approving_a_withdrawal_invalidates_the_pending_holds(rider, django_capture_on_commit_callbacks):
    earn(rider.pk, 100_000)
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal = services.withdrawal_request(rider_id=rider.pk, amount_paise=50_000, idempotency_key="k").withdrawal
    assert wallet_summary(rider_id=rider.pk).value["held_count"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory(), payout_reference="U")
    after = wallet_summary(rider_id=rider.pk)
    assert (after.hit, after.value["held_count"], after.value["held_paise"]) == (False, 0, 0)


def test_a_summary_read_while_a_posting_commits_is_never_served_from_the_cache(rider):
    """The read-through race: the reader loads the old balance, the posting commits and invalidates, then the
    reader stores what it loaded. A plain delete-on-commit would now serve the stale summary until its TTL."""

    def load_then_a_posting_commits():
        value = {"wallet_paise": 0}
        summary_invalidate(rider.pk)  # what the posting's on-commit callback does
        return value

    assert not summary_cached(rider.pk, load_then_a_posting_commits).hit
    fresh = summary_cached(rider.pk, lambda: {"wallet_paise": 2_500})
    assert (fresh.hit, fresh.value) == (False, {"wallet_paise": 2_500})


def test_redis_down_reads_from_the_database(rider, caplog):
    earn(rider.pk, 1_234)
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING, logger="fleetops.wallet.cache"):
        summary = wallet_summary(rider_id=rider.pk)
    assert (summary.hit, summary.value["wallet_paise"]) == (False, 1_234)
    assert "wallet cache unavailable" in caplog.text


def test_redis_down_the_wallet_endpoint_still_answers(rider):
    earn(rider.pk, 1_234)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rider.user).key}")
    with override_settings(CACHES=DEAD_REDIS):
        response = client.get("/api/v1/driver/wallet/")
    assert response.status_code == 200
    assert (response["X-Cache"], response.json()["balance"]) == ("MISS", "12.34")


def test_redis_down_a_posting_still_commits_and_the_failure_is_logged(
    rider, caplog, django_capture_on_commit_callbacks
):
    with (
        override_settings(CACHES=DEAD_REDIS),
        caplog.at_level(logging.ERROR, logger="fleetops.wallet.cache"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        earn(rider.pk, 500)
    assert "invalidation failed" in caplog.text
    assert wallet_summary(rider_id=rider.pk).value["wallet_paise"] == 500


def test_invalidations_from_many_threads_all_land_and_leave_the_cache_pool_alone(caplog):
    """Each thread invalidates on a connection of its own; 150 threads (more than the pool's 100) all succeed."""
    import threading

    from django.core.cache import cache

    keys = [f"wallet:gen:{900_000 + n}" for n in range(150)]
    with caplog.at_level(logging.ERROR, logger="fleetops.wallet.cache"):
        threads = [threading.Thread(target=summary_invalidate, args=(900_000 + n,)) for n in range(150)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert "invalidation failed" not in caplog.text
    assert len(cache.get_many(keys)) == 150
    assert cache.set("wallet:probe", 1) is not False
