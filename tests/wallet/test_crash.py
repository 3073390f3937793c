"""A posting that crashes half way (after its entry is inserted, before the balance moves) leaves nothing: no
entry, no claimed key, no balance change. Shown with a database error and with the server process of the
connection killed outright."""

import threading
import time

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.riders.factories import RiderFactory
from tests.wallet.factories import earn
from wallet.models import Balance, EntryType, LedgerEntry, LedgerKey
from wallet.services import ledger_entry_post

# Fires on the balance update of a posting whose entry (key ``crash:<...>``) is already inserted in the same
# transaction: the crash comes after the insert, by construction.
CRASH_TRIGGER = """
CREATE FUNCTION wallet_test_crash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wallet_ledgerentry WHERE rider_id = NEW.rider_id AND idempotency_key = 'crash:raise') THEN
        RAISE EXCEPTION 'crash after the entry insert' USING ERRCODE = 'raise_exception';
    END IF;
    IF EXISTS (SELECT 1 FROM wallet_ledgerentry WHERE rider_id = NEW.rider_id AND idempotency_key = 'crash:kill') THEN
        PERFORM pg_sleep(60);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER wallet_test_crash BEFORE UPDATE ON wallet_balance FOR EACH ROW EXECUTE FUNCTION wallet_test_crash();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS wallet_test_crash ON wallet_balance;
DROP FUNCTION IF EXISTS wallet_test_crash();
"""


def state(rider) -> tuple:
    balance = Balance.objects.get(rider=rider)
    return (
        balance.wallet_paise,
        balance.entry_count,
        LedgerEntry.objects.filter(rider=rider).count(),
        LedgerKey.objects.filter(rider_id=rider.pk).count(),
    )


@pytest.mark.django_db
def test_an_error_after_the_entry_insert_leaves_neither_entry_nor_balance_change():
    rider = RiderFactory()
    earn(rider.pk, 1_000)
    before = state(rider)
    with connection.cursor() as cursor:
        cursor.execute(CRASH_TRIGGER)  # DDL inside the test's transaction: gone when it rolls back
    with pytest.raises(DatabaseError, match="crash after the entry insert"), transaction.atomic():
        ledger_entry_post(
            rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=500, idempotency_key="crash:raise"
        )
    assert state(rider) == before
    assert not LedgerKey.objects.filter(idempotency_key="crash:raise").exists()
    # The key was never claimed: the same posting goes through once the fault is gone.
    with connection.cursor() as cursor:
        cursor.execute(DROP_TRIGGER)
    assert ledger_entry_post(
        rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=500, idempotency_key="crash:raise"
    ).created


@pytest.mark.django_db
def test_a_failing_caller_after_the_posting_takes_the_posting_with_it():
    rider = RiderFactory()
    earn(rider.pk, 1_000)
    before = state(rider)

    def post_then_fail() -> None:
        with transaction.atomic():
            ledger_entry_post(rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=500, idempotency_key="x")
            Balance.objects.create(rider=rider)  # the caller's next write fails: a duplicate balance row

    with pytest.raises(IntegrityError):
        post_then_fail()
    assert state(rider) == before


@pytest.mark.django_db(transaction=True)
def test_a_server_process_killed_mid_posting_leaves_nothing():
    rider = RiderFactory()
    earn(rider.pk, 1_000)
    before = state(rider)
    with connection.cursor() as cursor:
        cursor.execute(CRASH_TRIGGER)
    outcome: list[BaseException | str] = []

    def post() -> None:
        try:
            ledger_entry_post(
                rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=500, idempotency_key="crash:kill"
            )
            outcome.append("committed")
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connection.close()

    poster = threading.Thread(target=post)
    try:
        poster.start()
        pid = None
        for _ in range(200):  # the posting inserted its entry and now sits in the balance update
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE '%wallet_ledger_post%' AND wait_event = 'PgSleep'"
                )
                row = cursor.fetchone()
            if row:
                pid = row[0]
                break
            time.sleep(0.05)
        assert pid is not None, "the posting never reached its balance update"
        assert not LedgerEntry.objects.filter(idempotency_key="crash:kill").exists()  # not committed: invisible
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        poster.join(timeout=30)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_TRIGGER)
    assert len(outcome) == 1
    assert isinstance(outcome[0], DatabaseError), outcome
    assert state(rider) == before
    assert not LedgerKey.objects.filter(idempotency_key="crash:kill").exists()
