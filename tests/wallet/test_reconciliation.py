"""Reconciliation proves balance == sum(entries) for every rider in one SQL aggregate, and reports drift in the
admin and the log without ever correcting it."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.schedule import SCHEDULE
from tests.riders.factories import RiderFactory
from tests.wallet.factories import deliver, earn, picked_up
from wallet import services, tasks
from wallet.models import Balance, ReconciliationDrift, ReconciliationRun

pytestmark = pytest.mark.django_db


def riders_with_activity(count: int) -> list:
    riders = [RiderFactory() for _ in range(count)]
    for rider in riders:
        earn(rider.pk, 10_000)
        deliver(picked_up(rider, cod_amount_paise=5_000))
        services.withdrawal_request(rider_id=rider.pk, amount_paise=10_000, idempotency_key="w")
    return riders


def test_a_healthy_ledger_reconciles_without_drift(caplog):
    riders_with_activity(3)
    with caplog.at_level(logging.INFO, logger="fleetops.wallet"):
        run = services.ledger_reconcile()
    assert (run.riders_checked, run.entries_checked, run.drift_count) == (3, 12, 0)
    assert run.finished_at is not None
    assert not ReconciliationDrift.objects.exists()
    assert "no drift" in caplog.text


def test_drift_is_recorded_and_logged_and_never_corrected(caplog):
    _healthy, drifted = riders_with_activity(2)
    # Someone changed a balance behind the ledger's back (the balance row is not append-only).
    Balance.objects.filter(rider=drifted).update(wallet_paise=999_999)
    with caplog.at_level(logging.ERROR, logger="fleetops.wallet"):
        run = services.ledger_reconcile()
    assert run.drift_count == 1
    drift = ReconciliationDrift.objects.get(run=run)
    assert (drift.rider_id, drift.balance_wallet_paise, drift.ledger_wallet_paise) == (drifted.pk, 999_999, 4_500)
    assert drift.wallet_drift_paise == 999_999 - 4_500
    assert (drift.balance_cod_paise, drift.ledger_cod_paise, drift.cod_drift_paise) == (-5_000, -5_000, 0)
    assert Balance.objects.get(rider=drifted).wallet_paise == 999_999  # not fixed
    assert f"wallet drift: rider {drifted.pk}" in caplog.text
    assert "1 of 2 riders drift" in caplog.text


def test_entries_without_a_balance_row_and_a_wrong_entry_count_are_drift():
    counted, missing = riders_with_activity(2)
    Balance.objects.filter(rider=counted).update(entry_count=3)
    Balance.objects.filter(rider=missing).delete()
    run = services.ledger_reconcile()
    drifts = {d.rider_id: d for d in ReconciliationDrift.objects.filter(run=run)}
    assert set(drifts) == {counted.pk, missing.pk}
    assert (drifts[counted.pk].balance_entry_count, drifts[counted.pk].ledger_entry_count) == (3, 4)
    assert drifts[missing.pk].balance_wallet_paise is None
    assert drifts[missing.pk].wallet_drift_paise is None


def test_a_balance_row_with_money_but_no_entries_is_drift():
    rider = RiderFactory()
    Balance.objects.create(rider=rider, wallet_paise=100)
    Balance.objects.create(rider=RiderFactory())  # an empty row agrees with an empty ledger
    run = services.ledger_reconcile()
    assert list(ReconciliationDrift.objects.filter(run=run).values_list("rider_id", flat=True)) == [rider.pk]


def test_reconciliation_is_one_aggregate_whatever_the_rider_count():
    riders_with_activity(2)
    with CaptureQueriesContext(connection) as few:
        services.ledger_reconcile()
    riders_with_activity(6)
    with CaptureQueriesContext(connection) as many:
        services.ledger_reconcile()
    assert len(many) == len(few)
    aggregates = [q["sql"] for q in many.captured_queries if "FROM wallet_ledgerentry" in q["sql"]]
    assert len(aggregates) == 1
    assert "GROUP BY rider_id" in aggregates[0]


def test_the_nightly_task_runs_the_reconciliation_and_is_scheduled():
    riders_with_activity(1)
    assert tasks.reconcile_task.apply().get() == 0
    assert ReconciliationRun.objects.count() == 1
    entry = next(e for e in SCHEDULE if e.task == "wallet.reconcile")
    assert (entry.crontab.get("hour"), entry.crontab.get("minute")) == ("1", "30")


def test_drift_is_shown_in_the_admin(staff_client):
    (drifted,) = riders_with_activity(1)
    Balance.objects.filter(rider=drifted).update(cod_paise=0)
    services.ledger_reconcile()
    report = staff_client.get(reverse("admin:wallet_reconciliation")).content.decode()
    assert drifted.mobile in report
    assert "INR -50.00" in report
    page = staff_client.get(reverse("admin:wallet_rider_wallet", args=[drifted.pk])).content.decode()
    assert "INR -50.00" in page
    balances = staff_client.get(reverse("admin:wallet_balance_changelist"), {"drift": "yes"}).content.decode()
    assert drifted.mobile in balances
    assert (
        drifted.mobile
        not in staff_client.get(reverse("admin:wallet_balance_changelist"), {"drift": "no"}).content.decode()
    )
