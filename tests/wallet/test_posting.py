"""The posting primitive: one statement, a refusal that leaves the caller's transaction usable, and a key that
never means two different postings."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.riders.factories import RiderFactory
from tests.wallet.factories import earn
from wallet import services
from wallet.models import Balance, EntryType, LedgerEntry
from wallet.services import IdempotencyKeyReused, InsufficientBalance, ledger_entry_post

pytestmark = pytest.mark.django_db


def test_a_posting_is_one_statement():
    rider = RiderFactory()
    earn(rider.pk, 100)
    with CaptureQueriesContext(connection) as queries:
        ledger_entry_post(rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=100, idempotency_key="one")
    assert len(queries) == 1
    assert "FROM wallet_ledger_post(" in queries[0]["sql"]


def test_a_first_posting_creates_the_balance_row():
    rider = RiderFactory()
    posting = ledger_entry_post(
        rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=250, idempotency_key="first"
    )
    assert posting.created
    assert posting.entry.pk is not None
    assert posting.entry.rider_id == rider.pk
    assert posting.entry.created_at is not None
    balance = Balance.objects.get(rider=rider)
    assert (balance.wallet_paise, balance.cod_paise, balance.entry_count) == (250, 0, 1)


def test_a_refusal_leaves_the_callers_transaction_usable():
    rider = RiderFactory()
    earn(rider.pk, 100)
    with transaction.atomic():
        with pytest.raises(InsufficientBalance):
            ledger_entry_post(
                rider_id=rider.pk, entry_type=EntryType.WITHDRAWAL, amount_paise=-101, idempotency_key="too-much"
            )
        ledger_entry_post(rider_id=rider.pk, entry_type=EntryType.WITHDRAWAL, amount_paise=-100, idempotency_key="ok")
    assert Balance.objects.get(rider=rider).wallet_paise == 0


def test_a_key_posted_again_with_other_content_is_refused_and_posts_nothing():
    rider, other = RiderFactory(), RiderFactory()
    earn(rider.pk, 100, key="bonus:1")
    for kwargs in (
        {"rider_id": rider.pk, "amount_paise": 101},
        {"rider_id": other.pk, "amount_paise": 100},
        {"rider_id": rider.pk, "amount_paise": 100, "entry_type": EntryType.EARNING},
    ):
        with pytest.raises(IdempotencyKeyReused):
            ledger_entry_post(**{"entry_type": EntryType.INCENTIVE, "idempotency_key": "bonus:1", **kwargs})
    assert LedgerEntry.objects.filter(idempotency_key="bonus:1").count() == 1
    assert Balance.objects.get(rider=rider).entry_count == 1


def test_a_riders_entries_are_in_posting_order_by_time_and_by_id():
    rider = RiderFactory()
    for n in range(5):
        earn(rider.pk, 100 + n)
    by_time = list(
        LedgerEntry.objects.filter(rider=rider).order_by("created_at").values_list("amount_paise", flat=True)
    )
    by_id = list(LedgerEntry.objects.filter(rider=rider).order_by("id").values_list("amount_paise", flat=True))
    assert by_time == by_id == [100, 101, 102, 103, 104]


def test_the_posting_statement_answers_the_entrys_columns_in_model_order():
    assert [f.attname for f in LedgerEntry._meta.concrete_fields] == services._ENTRY_COLUMNS
    assert services._POST_SQL.startswith("SELECT outcome, balance_paise, " + ", ".join(services._ENTRY_COLUMNS) + " ")
