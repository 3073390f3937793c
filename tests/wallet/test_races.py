"""The wallet under concurrency, with real threads on separate database connections: withdrawals racing for one
balance, deliveries and withdrawals of many riders interleaved, duplicate requests, and a payout decided twice
at once. Money is never lost, doubled or overdrawn, and no lock order deadlocks."""

import random
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from config.errors import DomainError
from tests.riders.factories import RiderFactory
from tests.wallet.factories import FinanceUserFactory, deliver, earn, picked_up
from wallet import services
from wallet.models import Balance, EntryType, LedgerEntry, WithdrawalRequest, WithdrawalStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def wide_pool() -> Iterator[None]:
    """Room for 60 connections in this process's psycopg pool (8 by default), so every racer holds its own."""
    options = connection.settings_dict["OPTIONS"]
    original = options.get("pool")
    if not original:
        yield
        return
    connection.close()
    connection.close_pool()
    options["pool"] = {**original, "max_size": 60, "timeout": 30}
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        options["pool"] = original


def run_together(actions: list[Callable[[], object]], *, threads: int | None = None) -> tuple[list, list]:
    """Runs the actions on ``threads`` threads (one per action by default), each on its own connection,
    released together once every thread is connected. Returns (results, domain errors); any other exception
    fails the test."""
    count = threads or len(actions)
    queue = list(actions)
    lock = threading.Lock()
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []
    crashes: list = []

    def worker() -> None:
        try:
            connection.ensure_connection()
            barrier.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    action = queue.pop()
                try:
                    outcome = action()
                except DomainError as exc:
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        results.append(outcome)
        except BaseException as exc:  # a deadlock, a lost connection: reported below
            with lock:
                crashes.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool), "a racer hung"
    assert crashes == []
    return results, errors


def balances_agree_with_ledger(rider_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT b.rider_id, b.wallet_paise, b.cod_paise, b.entry_count,
                   coalesce(sum(e.amount_paise) FILTER (WHERE e.account = 'WALLET'), 0),
                   coalesce(sum(e.amount_paise) FILTER (WHERE e.account = 'COD'), 0),
                   count(e.id)
            FROM wallet_balance b LEFT JOIN wallet_ledgerentry e ON e.rider_id = b.rider_id
            WHERE b.rider_id = ANY(%s)
            GROUP BY b.rider_id
            """,
            [rider_ids],
        )
        rows = cursor.fetchall()
    assert len(rows) == len(rider_ids)
    for rider_id, wallet, cod, count, ledger_wallet, ledger_cod, ledger_count in rows:
        assert (wallet, cod, count) == (ledger_wallet, ledger_cod, ledger_count), rider_id
        assert wallet >= 0


def test_fifty_withdrawals_of_sixty_percent_of_one_balance_exactly_one_succeeds(wide_pool, settings):
    settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE = 10**12
    rider = RiderFactory()
    earn(rider.pk, 10_000_00)

    results, errors = run_together(
        [
            lambda i=i: services.withdrawal_request(rider_id=rider.pk, amount_paise=6_000_00, idempotency_key=f"t{i}")
            for i in range(50)
        ]
    )

    assert len(results) == 1
    assert len(errors) == 49
    assert all(isinstance(e, services.InsufficientBalance) for e in errors)
    assert Balance.objects.get(rider=rider).wallet_paise == 4_000_00
    assert WithdrawalRequest.objects.filter(rider=rider).count() == 1
    assert LedgerEntry.objects.filter(rider=rider, entry_type=EntryType.WITHDRAWAL).count() == 1
    balances_agree_with_ledger([rider.pk])


def test_two_hundred_deliveries_and_withdrawals_of_twenty_riders_never_overdraw(wide_pool, settings):
    """100 deliveries (with and without COD) and 100 withdrawals, shuffled, on 40 threads; meanwhile a watcher
    reads every balance over and over. No balance is ever seen below zero or out of step with the ledger."""
    settings.WALLET_WITHDRAWAL_MIN_PAISE = 1_00
    settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE = 10**12
    # Each delivery pushes order.changed to up to four groups after commit; 40 threads doing that at once
    # outrun the Redis channel layer's connection pool (100), a limit of the publishing code, not of the
    # wallet. The pushes go to the in-process layer here; the money path is unchanged.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    rng = random.Random(6)
    riders = [RiderFactory() for _ in range(20)]
    rider_ids = [r.pk for r in riders]
    for rider in riders:
        earn(rider.pk, 150_00)
    actions: list[Callable[[], object]] = []
    for rider in riders:
        for _ in range(5):
            order = picked_up(
                rider, delivery_fee_paise=rng.randint(20_00, 80_00), cod_amount_paise=rng.choice([0, 300_00])
            )
            actions.append(lambda order=order: deliver(order))
        for n in range(5):
            amount = rng.randint(40_00, 120_00)
            actions.append(
                lambda rider=rider, n=n, amount=amount: services.withdrawal_request(
                    rider_id=rider.pk, amount_paise=amount, idempotency_key=f"race-{n}"
                )
            )
    rng.shuffle(actions)

    seen_minimum: list[int] = []
    watcher_failures: list[BaseException] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT min(wallet_paise) FROM wallet_balance WHERE rider_id = ANY(%s)", [rider_ids])
                    seen_minimum.append(cursor.fetchone()[0])
                balances_agree_with_ledger(rider_ids)
        except BaseException as exc:
            watcher_failures.append(exc)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results, errors = run_together(actions, threads=40)
    finally:
        stop.set()
        watcher.join(timeout=30)

    assert watcher_failures == []
    assert len(results) + len(errors) == 200
    assert all(isinstance(e, services.InsufficientBalance) for e in errors)
    assert min(v for v in seen_minimum if v is not None) >= 0
    assert len(seen_minimum) > 5
    balances_agree_with_ledger(rider_ids)
    assert LedgerEntry.objects.filter(rider_id__in=rider_ids, entry_type=EntryType.EARNING).count() == 100
    assert LedgerEntry.objects.filter(rider_id__in=rider_ids, entry_type=EntryType.WITHDRAWAL).count() == (
        WithdrawalRequest.objects.filter(rider_id__in=rider_ids).count()
    )
    assert services.ledger_reconcile().drift_count == 0


def test_a_request_sent_twice_at_once_is_one_request(wide_pool):
    rider = RiderFactory()
    earn(rider.pk, 1_000_00)
    results, errors = run_together(
        [
            lambda: services.withdrawal_request(rider_id=rider.pk, amount_paise=100_00, idempotency_key="same")
            for _ in range(8)
        ]
    )
    assert errors == []
    assert len({r.withdrawal.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Balance.objects.get(rider=rider).wallet_paise == 900_00


def test_a_withdrawal_approved_and_rejected_at_once_is_one_or_the_other(wide_pool):
    riders = [RiderFactory() for _ in range(6)]
    withdrawals = []
    for rider in riders:
        earn(rider.pk, 1_000_00)
        withdrawals.append(
            services.withdrawal_request(rider_id=rider.pk, amount_paise=500_00, idempotency_key="k").withdrawal
        )
    ids = [w.pk for w in withdrawals]
    payer, rejecter = FinanceUserFactory(), FinanceUserFactory()

    actions: list[Callable[[], object]] = []
    for withdrawal_id in ids:
        actions.append(
            lambda w=withdrawal_id: services.withdrawals_approve(withdrawal_ids=[w], actor=payer, payout_reference="U")
        )
        actions.append(
            lambda w=withdrawal_id: services.withdrawals_reject(withdrawal_ids=[w], actor=rejecter, reason="r")
        )
    # And the whole batch from both sides, in opposite orders: lock order keeps them from deadlocking.
    actions.append(lambda: services.withdrawals_approve(withdrawal_ids=ids, actor=payer, payout_reference="U"))
    actions.append(lambda: services.withdrawals_reject(withdrawal_ids=ids[::-1], actor=rejecter, reason="r"))

    run_together(actions)

    for withdrawal in WithdrawalRequest.objects.filter(pk__in=ids):
        reversals = LedgerEntry.objects.filter(entry_type=EntryType.REVERSAL, reverses_id=withdrawal.hold_entry_id)
        if withdrawal.status == WithdrawalStatus.PAID:
            assert not reversals.exists()
            assert Balance.objects.get(rider_id=withdrawal.rider_id).wallet_paise == 500_00
        else:
            assert withdrawal.status == WithdrawalStatus.REJECTED
            assert reversals.count() == 1
            assert Balance.objects.get(rider_id=withdrawal.rider_id).wallet_paise == 1_000_00
    balances_agree_with_ledger([r.pk for r in riders])
