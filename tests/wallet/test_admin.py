"""Finance approves and rejects withdrawals in admin through the wallet service; ops see a rider's wallet and
record COD deposits; payouts export as CSV for a date range; the wallet's pages cost constant queries."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.riders.factories import RiderFactory, UserFactory
from tests.wallet.factories import FinanceUserFactory, deliver, earn, picked_up
from wallet import services
from wallet.models import Balance, EntryType, LedgerEntry, WithdrawalRequest, WithdrawalStatus

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:wallet_withdrawalrequest_changelist")
W = WithdrawalStatus


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def finance_client(user=None) -> Client:
    user = user or FinanceUserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_withdrawalrequest"))
    return logged_in(user)


def requested(amount_paise=500_00, rider=None):
    rider = rider or RiderFactory()
    earn(rider.pk, amount_paise)
    return services.withdrawal_request(
        rider_id=rider.pk, amount_paise=amount_paise, idempotency_key=f"k{amount_paise}"
    ).withdrawal


def act(client, action, withdrawals, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [w.pk for w in withdrawals], **extra}
    return client.post(CHANGELIST, data, follow=True)


def test_approve_asks_for_the_payout_reference_then_pays_the_selected():
    client = finance_client()
    withdrawals = [requested(500_00), requested(600_00)]
    page = act(client, "approve_withdrawals", withdrawals)
    assert 'name="payout_reference"' in page.content.decode()
    assert WithdrawalRequest.objects.filter(status=W.REQUESTED).count() == 2

    done = act(client, "approve_withdrawals", withdrawals, apply="1", payout_reference="NEFT-BATCH-1")
    assert "2 paid" in done.content.decode()
    assert set(WithdrawalRequest.objects.values_list("status", "payout_reference")) == {(W.PAID, "NEFT-BATCH-1")}


def test_maker_checker_in_admin_needs_a_second_finance_user():
    maker, checker = FinanceUserFactory(), FinanceUserFactory()
    large = requested(20_000_00)
    first = act(finance_client(maker), "approve_withdrawals", [large], apply="1", payout_reference="")
    assert "awaiting a second finance approver" in first.content.decode()
    again = act(finance_client(maker), "approve_withdrawals", [large], apply="1", payout_reference="IMPS-1")
    assert "second finance user must approve" in again.content.decode()
    act(finance_client(checker), "approve_withdrawals", [large], apply="1", payout_reference="IMPS-1")
    large.refresh_from_db()
    assert (large.status, large.approved_by, large.second_approved_by) == (W.PAID, maker, checker)


def test_reject_asks_for_a_reason_and_gives_the_money_back():
    client = finance_client()
    withdrawal = requested(500_00)
    page = act(client, "reject_withdrawals", [withdrawal])
    assert 'name="reason"' in page.content.decode()
    done = act(client, "reject_withdrawals", [withdrawal], apply="1", reason="Bank account closed")
    assert "1 rejected" in done.content.decode()
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.rejection_reason) == (W.REJECTED, "Bank account closed")
    assert Balance.objects.get(rider_id=withdrawal.rider_id).wallet_paise == 500_00


def test_staff_outside_the_finance_group_have_no_payout_actions(staff_client):
    withdrawal = requested()
    page = staff_client.get(CHANGELIST).content.decode()
    assert "approve_withdrawals" not in page
    assert "reject_withdrawals" not in page
    act(staff_client, "approve_withdrawals", [withdrawal], apply="1", payout_reference="X")
    withdrawal.refresh_from_db()
    assert withdrawal.status == W.REQUESTED


def test_withdrawals_cannot_be_edited_in_admin(staff_client):
    withdrawal = requested()
    change = staff_client.get(reverse("admin:wallet_withdrawalrequest_change", args=[withdrawal.pk]))
    assert 'name="_save"' not in change.content.decode()
    assert staff_client.get(reverse("admin:wallet_withdrawalrequest_add")).status_code == 403


def test_the_riders_wallet_page_shows_balance_holds_and_entries(staff_client):
    rider = RiderFactory()
    withdrawal = requested(700_00, rider=rider)
    deliver(picked_up(rider, cod_amount_paise=300_00))
    page = staff_client.get(reverse("admin:wallet_rider_wallet", args=[rider.pk])).content.decode()
    assert "INR 45.00" in page  # the balance: the delivery's earning, the rest is held
    assert f"#{withdrawal.pk}" in page
    assert "INR 300.00" in page  # cash held
    assert "Delivery earning" in page


def test_ops_with_the_permission_record_a_cod_deposit_from_the_wallet_page():
    rider = RiderFactory()
    deliver(picked_up(rider, cod_amount_paise=300_00))
    ops = UserFactory(is_staff=True)
    ops.user_permissions.add(
        Permission.objects.get(codename="view_balance"), Permission.objects.get(codename="record_cod_deposit")
    )
    url = reverse("admin:wallet_rider_wallet", args=[rider.pk])
    response = logged_in(ops).post(url, {"amount": "200.00", "receipt": "RC-77"}, follow=True)
    assert "Recorded a COD deposit of INR 200.00" in response.content.decode()
    deposit = LedgerEntry.objects.get(rider=rider, entry_type=EntryType.COD_DEPOSIT)
    assert (deposit.amount_paise, deposit.created_by) == (200_00, ops)
    assert Balance.objects.get(rider=rider).cod_paise == -100_00
    too_much = logged_in(ops).post(url, {"amount": "200.00", "receipt": "RC-78"}, follow=True)
    assert "The rider holds 100.00 of cash" in too_much.content.decode()
    assert Balance.objects.get(rider=rider).cod_paise == -100_00


def test_staff_without_the_permission_see_no_deposit_form_and_cannot_post_one():
    rider = RiderFactory()
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_balance"))
    client = logged_in(viewer)
    url = reverse("admin:wallet_rider_wallet", args=[rider.pk])
    assert 'name="receipt"' not in client.get(url).content.decode()
    assert client.post(url, {"amount": "1.00", "receipt": "R"}).status_code == 403


def test_payouts_export_for_a_date_range_is_formula_safe_csv(staff_client):
    finance = FinanceUserFactory()
    rider = RiderFactory(name="=cmd|' /C calc'!A0")
    paid = requested(500_00, rider=rider)
    services.withdrawals_approve(withdrawal_ids=[paid.pk], actor=finance, payout_reference="@SUM(1+1)")
    requested(600_00)  # not paid: not exported
    url = reverse("admin:wallet_withdrawalrequest_payouts")
    assert 'name="start"' in staff_client.get(url).content.decode()
    today = timezone.localdate().isoformat()
    response = staff_client.get(url, {"start": today, "end": today})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert (rows[0]["withdrawal_id"], rows[0]["amount"]) == (str(paid.pk), "500.00")
    assert rows[0]["rider_name"].startswith("'=")
    assert rows[0]["payout_reference"] == "'@SUM(1+1)"
    assert rows[0]["approved_by"] == finance.username


def test_the_payouts_export_of_another_range_is_empty(staff_client):
    paid = requested()
    services.withdrawals_approve(withdrawal_ids=[paid.pk], actor=FinanceUserFactory(), payout_reference="U")
    response = staff_client.get(
        reverse("admin:wallet_withdrawalrequest_payouts"), {"start": "2020-01-01", "end": "2020-01-31"}
    )
    assert b"".join(response.streaming_content).decode().count("\n") == 1


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(captured)


def test_the_wallets_own_pages_cost_constant_queries(staff_client):
    finance = FinanceUserFactory()
    rider = RiderFactory()

    def activity():
        for _ in range(3):
            withdrawal = requested(500_00 + LedgerEntry.objects.count(), rider=rider)
            deliver(picked_up(rider, cod_amount_paise=100_00))
            services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=finance, payout_reference="U")
        Balance.objects.filter(rider=rider).update(wallet_paise=1)
        services.ledger_reconcile()

    today = timezone.localdate().isoformat()
    urls = [
        reverse("admin:wallet_rider_wallet", args=[rider.pk]),
        reverse("admin:wallet_reconciliation"),
        reverse("admin:wallet_withdrawalrequest_payouts") + f"?start={today}&end={today}",
        reverse("admin:wallet_balance_changelist") + "?drift=yes",
    ]
    activity()
    few = [queries(staff_client, url) for url in urls]
    activity()
    activity()
    assert [queries(staff_client, url) for url in urls] == few
