"""The ledger is hash-partitioned, append-only in the database, and idempotent by key."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from tests.orders.factories import DeliveredOrderFactory
from tests.riders.factories import RiderFactory
from wallet.models import Account, Balance, EntryType, LedgerEntry
from wallet.services import InsufficientBalance, ledger_entry_post

pytestmark = pytest.mark.django_db


def _earn(rider, paise=10_000, key=None):
    return ledger_entry_post(
        rider_id=rider.pk, entry_type=EntryType.EARNING, amount_paise=paise, idempotency_key=key or f"earning:{paise}"
    ).entry


def test_eight_hash_partitions_exist():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'wallet_ledgerentry'::regclass ORDER BY c.relname
            """
        )
        rows = cursor.fetchall()
    assert [name for name, _ in rows] == [f"wallet_ledgerentry_p{i}" for i in range(8)]
    assert all("modulus 8" in bound.lower() for _, bound in rows)


def test_entries_of_one_rider_share_a_partition():
    rider = RiderFactory()
    _earn(rider, key="a")
    _earn(rider, key="b")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM wallet_ledgerentry WHERE rider_id = %s", [rider.pk]
        )
        assert len(cursor.fetchall()) == 1


def test_primary_key_holds_the_partition_key():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT array_agg(a.attname ORDER BY k.ord)
            FROM pg_constraint c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = 'wallet_ledgerentry'::regclass AND c.contype = 'p'
            """
        )
        assert cursor.fetchone()[0] == ["rider_id", "id"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE wallet_ledgerentry SET amount_paise = 1 WHERE id = %s",
        "DELETE FROM wallet_ledgerentry WHERE id = %s",
        "UPDATE wallet_ledgerkey SET rider_id = 0 WHERE entry_id = %s",
        "DELETE FROM wallet_ledgerkey WHERE entry_id = %s",
    ],
)
def test_the_database_refuses_to_change_or_remove_a_posting(statement):
    entry = _earn(RiderFactory())
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount_paise == 10_000


def test_orm_update_is_refused_too():
    entry = _earn(RiderFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(memo="changed")


def test_an_idempotency_key_is_unique_across_riders_and_partitions():
    first, second = RiderFactory(), RiderFactory()
    _earn(first, key="earning:42")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            rider=second, entry_type=EntryType.EARNING, amount_paise=100, idempotency_key="earning:42"
        )


def test_posting_the_same_key_twice_posts_once():
    rider = RiderFactory()
    order = DeliveredOrderFactory(rider=rider)
    first = ledger_entry_post(
        rider_id=rider.pk,
        entry_type=EntryType.EARNING,
        amount_paise=4500,
        idempotency_key=f"earning:{order.pk}",
        order_id=order.pk,
    )
    again = ledger_entry_post(
        rider_id=rider.pk,
        entry_type=EntryType.EARNING,
        amount_paise=4500,
        idempotency_key=f"earning:{order.pk}",
        order_id=order.pk,
    )
    assert first.created
    assert not again.created
    assert again.entry.pk == first.entry.pk
    assert Balance.objects.get(rider=rider).wallet_paise == 4500


def test_balance_equals_the_sum_of_entries_per_account():
    rider = RiderFactory()
    _earn(rider, 10_000, key="e1")
    _earn(rider, 2_500, key="e2")
    ledger_entry_post(rider_id=rider.pk, entry_type=EntryType.WITHDRAWAL, amount_paise=-5_000, idempotency_key="w1")
    ledger_entry_post(
        rider_id=rider.pk,
        entry_type=EntryType.COD_COLLECTED,
        amount_paise=-80_000,
        idempotency_key="cod:1",
        account=Account.COD,
    )
    balance = Balance.objects.get(rider=rider)
    sums = {
        row["account"]: row["total"]
        for row in LedgerEntry.objects.filter(rider=rider).values("account").annotate(total=Sum("amount_paise"))
    }
    assert balance.wallet_paise == sums[Account.WALLET] == 7_500
    assert balance.cod_paise == sums[Account.COD] == -80_000
    assert balance.entry_count == 4


def test_a_wallet_debit_beyond_the_balance_is_refused_and_posts_nothing():
    rider = RiderFactory()
    _earn(rider, 1_000, key="e1")
    with pytest.raises(InsufficientBalance):
        ledger_entry_post(rider_id=rider.pk, entry_type=EntryType.WITHDRAWAL, amount_paise=-1_001, idempotency_key="w")
    assert LedgerEntry.objects.filter(rider=rider).count() == 1
    assert Balance.objects.get(rider=rider).wallet_paise == 1_000


def test_the_balance_row_refuses_to_go_negative():
    rider = RiderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Balance.objects.create(rider=rider, wallet_paise=-1)


def test_an_entry_is_reversed_at_most_once():
    rider = RiderFactory()
    hold = ledger_entry_post(
        rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=3_000, idempotency_key="i1"
    ).entry
    ledger_entry_post(
        rider_id=rider.pk, entry_type=EntryType.REVERSAL, amount_paise=-3_000, idempotency_key="r1", reverses_id=hold.pk
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            rider=rider, entry_type=EntryType.REVERSAL, amount_paise=-3_000, idempotency_key="r2", reverses_id=hold.pk
        )


def test_a_reversal_must_point_at_an_entry_of_the_same_rider():
    owner, other = RiderFactory(), RiderFactory()
    entry = _earn(owner, key="e1")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            rider=other, entry_type=EntryType.REVERSAL, amount_paise=-100, idempotency_key="r", reverses_id=entry.pk
        )


@pytest.mark.parametrize(
    ("entry_type", "amount", "account"),
    [
        (EntryType.EARNING, -100, Account.WALLET),
        (EntryType.WITHDRAWAL, 100, Account.WALLET),
        (EntryType.COD_COLLECTED, -100, Account.WALLET),
        (EntryType.ADJUSTMENT, 0, Account.WALLET),
        (EntryType.REVERSAL, 100, Account.WALLET),
    ],
)
def test_constraints_refuse_malformed_entries(entry_type, amount, account):
    rider = RiderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            rider=rider, entry_type=entry_type, amount_paise=amount, idempotency_key="bad", account=account
        )
