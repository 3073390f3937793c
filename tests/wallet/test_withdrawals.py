"""Withdrawals: the hold is posted at once, limits and the daily cap hold, finance pays out (two people above
the threshold) or rejects with a reversal, and a retried request never requests twice."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.riders.factories import RiderFactory, UserFactory
from tests.wallet.factories import FinanceUserFactory, earn
from wallet import services
from wallet.models import Account, Balance, EntryType, LedgerEntry, WithdrawalRequest, WithdrawalStatus

pytestmark = pytest.mark.django_db

W = WithdrawalStatus


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.WALLET_WITHDRAWAL_MIN_PAISE = 100_00
    settings.WALLET_WITHDRAWAL_MAX_PAISE = 50_000_00
    settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE = 60_000_00
    settings.WALLET_DUAL_APPROVAL_ABOVE_PAISE = 10_000_00


@pytest.fixture
def rider():
    rider = RiderFactory()
    earn(rider.pk, 100_000_00)
    return rider


def request(rider, paise, key="k1", **kwargs):
    return services.withdrawal_request(rider_id=rider.pk, amount_paise=paise, idempotency_key=key, **kwargs)


def wallet_of(rider) -> int:
    return Balance.objects.get(rider=rider).wallet_paise


def test_a_request_holds_the_amount_at_once_with_a_withdrawal_entry(rider):
    result = request(rider, 500_00)
    withdrawal = result.withdrawal
    assert result.created
    assert withdrawal.status == W.REQUESTED
    hold = LedgerEntry.objects.get(pk=withdrawal.hold_entry_id)
    assert (hold.entry_type, hold.amount_paise, hold.idempotency_key) == (
        EntryType.WITHDRAWAL,
        -500_00,
        f"withdrawal:{withdrawal.pk}",
    )
    assert wallet_of(rider) == 100_000_00 - 500_00


def test_the_same_key_again_returns_the_first_request_and_holds_nothing_more(rider):
    first = request(rider, 500_00).withdrawal
    again = request(rider, 500_00)
    assert not again.created
    assert again.withdrawal.pk == first.pk
    assert WithdrawalRequest.objects.filter(rider=rider).count() == 1
    assert wallet_of(rider) == 100_000_00 - 500_00


def test_the_same_key_with_another_amount_is_a_conflict(rider):
    request(rider, 500_00)
    with pytest.raises(services.IdempotencyKeyReused):
        request(rider, 600_00)


def test_two_riders_may_use_the_same_key(rider):
    other = RiderFactory()
    earn(other.pk, 1_000_00)
    request(rider, 500_00)
    assert request(other, 500_00).created


def test_a_request_beyond_the_balance_is_refused_and_holds_nothing():
    poor = RiderFactory()
    earn(poor.pk, 400_00)
    with pytest.raises(services.InsufficientBalance):
        request(poor, 400_01)
    assert not WithdrawalRequest.objects.filter(rider=poor).exists()
    assert wallet_of(poor) == 400_00


def test_the_whole_balance_can_be_withdrawn():
    exact = RiderFactory()
    earn(exact.pk, 400_00)
    request(exact, 400_00)
    assert wallet_of(exact) == 0


def test_a_rider_with_no_wallet_yet_has_insufficient_balance():
    with pytest.raises(services.InsufficientBalance):
        request(RiderFactory(), 100_00)


@pytest.mark.parametrize(
    ("paise", "error"),
    [(99_99, services.AmountBelowMinimum), (50_000_01, services.AmountAboveMaximum)],
)
def test_amounts_outside_the_limits_are_refused(rider, paise, error):
    with pytest.raises(error):
        request(rider, paise)
    assert wallet_of(rider) == 100_000_00


def test_the_daily_cap_counts_the_days_requests_but_not_rejected_ones(rider):
    finance = FinanceUserFactory()
    first = request(rider, 40_000_00, key="a").withdrawal
    with pytest.raises(services.DailyCapExceeded, match=r"20000\.00 is left today"):
        request(rider, 20_000_01, key="b")
    request(rider, 20_000_00, key="c")
    services.withdrawals_reject(withdrawal_ids=[first.pk], actor=finance, reason="Bank details wrong")
    assert request(rider, 40_000_00, key="d").created


def test_the_daily_cap_starts_again_at_local_midnight(rider):
    request(rider, 50_000_00, key="a")
    WithdrawalRequest.objects.update(requested_at=timezone.now() - timedelta(days=1))
    assert request(rider, 50_000_00, key="b").created


# --- Approval --------------------------------------------------------------------------------------------


def test_finance_pays_out_a_small_withdrawal_with_its_reference(rider):
    finance = FinanceUserFactory()
    withdrawal = request(rider, 500_00).withdrawal
    decisions = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=finance, payout_reference="UTR123")
    withdrawal.refresh_from_db()
    assert decisions.paid == [withdrawal.pk]
    assert (withdrawal.status, withdrawal.payout_reference, withdrawal.approved_by) == (W.PAID, "UTR123", finance)
    assert withdrawal.decided_at is not None
    assert wallet_of(rider) == 100_000_00 - 500_00  # the hold already took it; paying moves no balance


def test_paying_out_needs_a_reference(rider):
    withdrawal = request(rider, 500_00).withdrawal
    decisions = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory())
    assert withdrawal.pk in decisions.refused
    withdrawal.refresh_from_db()
    assert withdrawal.status == W.REQUESTED


def test_above_the_threshold_two_different_finance_users_must_approve(rider):
    maker, checker = FinanceUserFactory(), FinanceUserFactory()
    withdrawal = request(rider, 10_000_01).withdrawal

    first = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=maker, payout_reference="UTR1")
    withdrawal.refresh_from_db()
    assert first.awaiting_second == [withdrawal.pk]
    assert (withdrawal.status, withdrawal.approved_by, withdrawal.payout_reference) == (W.APPROVED, maker, "")

    same = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=maker, payout_reference="UTR1")
    assert "second finance user" in same.refused[withdrawal.pk]
    withdrawal.refresh_from_db()
    assert withdrawal.status == W.APPROVED

    second = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=checker, payout_reference="UTR1")
    withdrawal.refresh_from_db()
    assert second.paid == [withdrawal.pk]
    assert (withdrawal.status, withdrawal.approved_by, withdrawal.second_approved_by) == (W.PAID, maker, checker)
    assert withdrawal.payout_reference == "UTR1"


def test_at_the_threshold_one_approval_pays(rider):
    withdrawal = request(rider, 10_000_00).withdrawal
    decisions = services.withdrawals_approve(
        withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory(), payout_reference="UTR2"
    )
    assert decisions.paid == [withdrawal.pk]


def test_the_database_refuses_one_user_as_both_approvers(rider):
    maker = FinanceUserFactory()
    withdrawal = request(rider, 10_000_01).withdrawal
    with pytest.raises(IntegrityError), transaction.atomic():
        WithdrawalRequest.objects.filter(pk=withdrawal.pk).update(approved_by=maker, second_approved_by=maker)


@pytest.mark.parametrize(
    "user",
    [
        lambda: UserFactory(is_staff=True),  # staff, not finance
        lambda: FinanceUserFactory(is_staff=False),  # in the group, not staff
        lambda: FinanceUserFactory(is_active=False),
    ],
)
def test_only_active_staff_in_the_finance_group_may_decide(rider, user):
    withdrawal = request(rider, 500_00).withdrawal
    with pytest.raises(services.NotFinance):
        services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=user(), payout_reference="UTR")
    with pytest.raises(services.NotFinance):
        services.withdrawals_reject(withdrawal_ids=[withdrawal.pk], actor=user(), reason="no")
    withdrawal.refresh_from_db()
    assert withdrawal.status == W.REQUESTED


def test_the_finance_group_is_a_setting(rider, settings):
    settings.FINANCE_GROUP = "payouts-team"
    user = FinanceUserFactory()  # made in the group the setting names
    withdrawal = request(rider, 500_00).withdrawal
    assert services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=user, payout_reference="U").paid


def test_bulk_approval_pays_what_it_can_and_says_what_it_could_not(rider):
    finance = FinanceUserFactory()
    small = [request(rider, 500_00, key=f"s{i}").withdrawal for i in range(3)]
    large = request(rider, 20_000_00, key="large").withdrawal
    paid = request(rider, 500_00, key="paid").withdrawal
    services.withdrawals_approve(withdrawal_ids=[paid.pk], actor=finance, payout_reference="EARLIER")

    decisions = services.withdrawals_approve(
        withdrawal_ids=[w.pk for w in [*small, large, paid]], actor=finance, payout_reference="BATCH-7"
    )
    assert decisions.paid == [w.pk for w in small]
    assert decisions.awaiting_second == [large.pk]
    assert list(decisions.refused) == [paid.pk]
    assert set(WithdrawalRequest.objects.filter(payout_reference="BATCH-7").values_list("pk", flat=True)) == {
        w.pk for w in small
    }


# --- Rejection -------------------------------------------------------------------------------------------


def test_a_rejection_reverses_the_hold_and_the_money_is_back(rider):
    finance = FinanceUserFactory()
    withdrawal = request(rider, 700_00).withdrawal
    decisions = services.withdrawals_reject(withdrawal_ids=[withdrawal.pk], actor=finance, reason="Account closed")
    withdrawal.refresh_from_db()
    assert decisions.rejected == [withdrawal.pk]
    assert (withdrawal.status, withdrawal.rejection_reason) == (W.REJECTED, "Account closed")
    reversal = LedgerEntry.objects.get(pk=withdrawal.release_entry_id)
    assert (reversal.entry_type, reversal.amount_paise, reversal.reverses_id) == (
        EntryType.REVERSAL,
        700_00,
        withdrawal.hold_entry_id,
    )
    assert reversal.created_by == finance
    assert wallet_of(rider) == 100_000_00


def test_a_first_approved_withdrawal_can_still_be_rejected(rider):
    withdrawal = request(rider, 20_000_00).withdrawal
    services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory(), payout_reference="U")
    services.withdrawals_reject(withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory(), reason="Fraud check")
    withdrawal.refresh_from_db()
    assert withdrawal.status == W.REJECTED
    assert wallet_of(rider) == 100_000_00


def test_paid_or_rejected_withdrawals_are_not_rejected_again(rider):
    finance = FinanceUserFactory()
    paid = request(rider, 500_00, key="p").withdrawal
    rejected = request(rider, 500_00, key="r").withdrawal
    services.withdrawals_approve(withdrawal_ids=[paid.pk], actor=finance, payout_reference="U")
    services.withdrawals_reject(withdrawal_ids=[rejected.pk], actor=finance, reason="first")

    decisions = services.withdrawals_reject(withdrawal_ids=[paid.pk, rejected.pk], actor=finance, reason="again")
    assert set(decisions.refused) == {paid.pk, rejected.pk}
    assert LedgerEntry.objects.filter(rider=rider, entry_type=EntryType.REVERSAL).count() == 1
    assert wallet_of(rider) == 100_000_00 - 500_00


def test_a_paid_withdrawal_is_not_approved_again(rider):
    finance = FinanceUserFactory()
    withdrawal = request(rider, 500_00).withdrawal
    services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=finance, payout_reference="FIRST")
    decisions = services.withdrawals_approve(withdrawal_ids=[withdrawal.pk], actor=finance, payout_reference="SECOND")
    assert withdrawal.pk in decisions.refused
    withdrawal.refresh_from_db()
    assert withdrawal.payout_reference == "FIRST"


def test_a_rejection_needs_a_reason(rider):
    withdrawal = request(rider, 500_00).withdrawal
    with pytest.raises(services.ReasonRequired):
        services.withdrawals_reject(withdrawal_ids=[withdrawal.pk], actor=FinanceUserFactory(), reason="  ")


# --- COD deposits ----------------------------------------------------------------------------------------


def test_a_cod_deposit_credits_the_cod_account_once_per_receipt():
    rider = RiderFactory()
    ops = UserFactory(is_staff=True)
    services.ledger_entry_post(
        rider_id=rider.pk,
        entry_type=EntryType.COD_COLLECTED,
        account=Account.COD,
        amount_paise=-2_000_00,
        idempotency_key="cod:test",
    )
    first = services.cod_deposit_record(rider_id=rider.pk, amount_paise=1_500_00, receipt="R-1", actor=ops)
    again = services.cod_deposit_record(rider_id=rider.pk, amount_paise=1_500_00, receipt="R-1", actor=ops)
    assert first.created
    assert not again.created
    assert first.entry.entry_type == EntryType.COD_DEPOSIT
    assert first.entry.created_by == ops
    assert Balance.objects.get(rider=rider).cod_paise == -500_00
    with pytest.raises(services.IdempotencyKeyReused):
        services.cod_deposit_record(rider_id=rider.pk, amount_paise=1_000_00, receipt="R-1", actor=ops)


def test_a_deposit_larger_than_the_cash_held_is_refused():
    rider = RiderFactory()
    with pytest.raises(services.DepositExceedsCodHeld):
        services.cod_deposit_record(
            rider_id=rider.pk, amount_paise=100, receipt="R-9", actor=UserFactory(is_staff=True)
        )
