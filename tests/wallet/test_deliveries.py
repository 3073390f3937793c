"""A delivery earns the rider its fee and, with cash on delivery, puts the cash on the rider's COD account, in
the delivery's own transaction, once."""

import pytest
from django.db import connection

from orders import events
from orders.models import OrderStatus
from tests.riders.factories import RiderFactory
from tests.wallet.factories import deliver, picked_up
from wallet import services
from wallet.models import Account, Balance, EntryType, LedgerEntry
from wallet.selectors import rider_cod_held_paise

pytestmark = pytest.mark.django_db


def test_a_delivery_posts_the_earning_and_the_cod_keyed_by_the_order():
    rider = RiderFactory()
    order = picked_up(rider, delivery_fee_paise=4_500, cod_amount_paise=25_000)
    deliver(order)
    entries = {e.idempotency_key: e for e in LedgerEntry.objects.filter(rider=rider)}
    earning, cod = entries[f"earning:{order.pk}"], entries[f"cod:{order.pk}"]
    assert (earning.entry_type, earning.account, earning.amount_paise, earning.order_id) == (
        EntryType.EARNING,
        Account.WALLET,
        4_500,
        order.pk,
    )
    assert (cod.entry_type, cod.account, cod.amount_paise, cod.order_id) == (
        EntryType.COD_COLLECTED,
        Account.COD,
        -25_000,
        order.pk,
    )
    balance = Balance.objects.get(rider=rider)
    assert (balance.wallet_paise, balance.cod_paise, balance.entry_count) == (4_500, -25_000, 2)
    assert rider_cod_held_paise(rider_id=rider.pk) == 25_000


def test_a_delivery_without_cod_posts_only_the_earning():
    rider = RiderFactory()
    deliver(picked_up(rider, delivery_fee_paise=4_500, cod_amount_paise=0))
    assert list(LedgerEntry.objects.filter(rider=rider).values_list("entry_type", flat=True)) == [EntryType.EARNING]


def test_a_free_delivery_posts_no_earning():
    rider = RiderFactory()
    deliver(picked_up(rider, delivery_fee_paise=0, cod_amount_paise=10_000))
    assert list(LedgerEntry.objects.filter(rider=rider).values_list("entry_type", flat=True)) == [
        EntryType.COD_COLLECTED
    ]


def test_a_retried_delivery_posts_nothing_new():
    rider = RiderFactory()
    order = picked_up(rider, cod_amount_paise=25_000)
    deliver(order)
    deliver(order)  # the app retried after a lost response: the order answers unchanged
    assert LedgerEntry.objects.filter(rider=rider).count() == 2


def test_a_replayed_delivery_event_posts_nothing_new():
    rider = RiderFactory()
    order = picked_up(rider, cod_amount_paise=25_000)
    deliver(order)
    order.refresh_from_db()
    events.order_delivered_send(order)  # the event itself delivered twice
    services.order_delivery_post(
        order_id=order.pk, rider_id=rider.pk, delivery_fee_paise=order.delivery_fee_paise, cod_amount_paise=25_000
    )
    assert LedgerEntry.objects.filter(rider=rider).count() == 2
    assert Balance.objects.get(rider=rider).entry_count == 2


def test_the_postings_run_inside_the_delivery_transaction(django_capture_on_commit_callbacks):
    rider = RiderFactory()
    order = picked_up(rider)
    seen = []

    def watcher(**kwargs):
        seen.append(connection.in_atomic_block)

    events.order_delivered.connect(watcher)
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            deliver(order)
    finally:
        events.order_delivered.disconnect(watcher)
    assert seen == [True]
    assert any(getattr(cb, "func", None).__name__ == "summary_invalidate" for cb in callbacks)


def test_a_delivery_refused_after_the_wallet_posted_leaves_no_money_behind():
    """Another subscriber (connected after the wallet) refuses the delivery: the whole transaction rolls back,
    the wallet's postings with it."""
    rider = RiderFactory()
    order = picked_up(rider, cod_amount_paise=25_000)

    def refuse(**kwargs):
        assert LedgerEntry.objects.filter(order_id=kwargs["order_id"]).count() == 2  # the wallet went first
        raise services.RuleViolation("refused after the postings")

    events.order_delivered.connect(refuse)
    try:
        with pytest.raises(services.RuleViolation):
            deliver(order)
    finally:
        events.order_delivered.disconnect(refuse)
    order.refresh_from_db()
    assert order.status == OrderStatus.PICKED_UP
    assert not LedgerEntry.objects.filter(rider=rider).exists()
    assert not Balance.objects.filter(rider=rider).exists()
