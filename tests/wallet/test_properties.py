"""Random sequences of deliveries (earnings and COD), incentives, COD deposits, withdrawals, approvals,
rejections and replays, checked step by step against a plain model of the rules.

After every step: each balance row equals the sum of its rider's entries per account (and the entry count), no
wallet is below zero, the balances are what the model says, every withdrawal's hold and reversal match its
status, and the cached wallet summary (after the step's commit callbacks) equals the database.
"""

from dataclasses import dataclass, field

import pytest
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orders import events
from tests.riders.factories import RiderFactory
from tests.wallet.factories import FinanceUserFactory, deliver, earn, picked_up
from wallet import services
from wallet.models import Account, Balance, EntryType, LedgerEntry, WithdrawalRequest, WithdrawalStatus
from wallet.selectors import wallet_summary

pytestmark = pytest.mark.django_db

W = WithdrawalStatus
MIN, MAX, CAP, DUAL = 1_00, 500_00, 800_00, 200_00
DECISIONS = ["approve", "approve without reference", "reject", "maker then checker"]
SEED = 600_00  # each rider starts with an incentive, so withdrawals get going


@dataclass
class RiderModel:
    wallet: int = 0
    cod: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # idempotency key -> withdrawal id
    incentives: dict[str, int] = field(default_factory=dict)  # key -> amount
    receipts: dict[str, int] = field(default_factory=dict)  # receipt -> amount


@dataclass
class WithdrawalModel:
    pk: int
    rider: int
    amount: int
    status: str = W.REQUESTED
    approver: int | None = None


class WalletMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.riders = [RiderFactory() for _ in range(2)]
        self.model = {r.pk: RiderModel(wallet=SEED) for r in self.riders}
        for rider in self.riders:
            earn(rider.pk, SEED, key=f"bonus:{rider.pk}:seed")
        self.finance = [FinanceUserFactory(), FinanceUserFactory()]
        self.withdrawals: list[WithdrawalModel] = []
        self.delivered: list = []
        self.now = timezone.now()  # one local day for the daily cap, even across midnight

    def _rider(self, index: int):
        return self.riders[index % len(self.riders)]

    def _commit(self):
        """What a commit would run: the cache invalidations the step registered."""
        return TestCase.captureOnCommitCallbacks(execute=True)

    # --- Rules -------------------------------------------------------------------------------------------

    @rule(who=st.integers(0, 1), fee=st.sampled_from([0, 45_00, 120_00]), cod=st.sampled_from([0, 250_00, 400_00]))
    def deliver(self, who, fee, cod):
        rider = self._rider(who)
        order = picked_up(rider, delivery_fee_paise=fee, cod_amount_paise=cod)
        with self._commit():
            deliver(order)
        self.model[rider.pk].wallet += fee
        self.model[rider.pk].cod -= cod
        order.refresh_from_db()
        self.delivered.append(order)

    @precondition(lambda self: self.delivered)
    @rule(index=st.integers(0, 50))
    def replay_delivery(self, index):
        order = self.delivered[index % len(self.delivered)]
        with self._commit():
            events.order_delivered_send(order)
            deliver(order)

    @rule(who=st.integers(0, 1), key=st.sampled_from(["a", "b"]), amount=st.sampled_from([10_00, 300_00]))
    def incentive(self, who, key, amount):
        rider = self._rider(who)
        model = self.model[rider.pk]
        full_key = f"bonus:{rider.pk}:{key}"
        post = lambda: services.ledger_entry_post(  # noqa: E731
            rider_id=rider.pk, entry_type=EntryType.INCENTIVE, amount_paise=amount, idempotency_key=full_key
        )
        if key in model.incentives and model.incentives[key] != amount:
            with pytest.raises(services.IdempotencyKeyReused):
                post()
            return
        with self._commit():
            created = post().created
        assert created == (key not in model.incentives)
        if created:
            model.incentives[key] = amount
            model.wallet += amount

    @rule(
        who=st.integers(0, 1),
        amount=st.sampled_from([50, 1_00, 150_00, 200_00, 200_01, 350_00, 500_01]),
        key=st.sampled_from(["k1", "k2", "k3", "k4", "k5"]),
        then=st.sampled_from([None, *DECISIONS]),
        first_approver=st.booleans(),
    )
    def withdraw(self, who, amount, key, then, first_approver):
        """A request (a new key, or a key used before: a replay or a conflict), and ``then`` a decision on it
        at once."""
        rider = self._rider(who)
        model = self.model[rider.pk]
        expected: type[Exception] | None = None
        existing = model.requests.get(key)
        if existing is not None:
            if self._withdrawal(existing).amount != amount:
                expected = services.IdempotencyKeyReused
        elif amount < MIN:
            expected = services.AmountBelowMinimum
        elif amount > MAX:
            expected = services.AmountAboveMaximum
        elif self._today(rider.pk) + amount > CAP:
            expected = services.DailyCapExceeded
        elif amount > model.wallet:
            expected = services.InsufficientBalance
        call = lambda: services.withdrawal_request(  # noqa: E731
            rider_id=rider.pk, amount_paise=amount, idempotency_key=key, now=self.now
        )
        if expected is not None:
            with pytest.raises(expected):
                call()
            return
        with self._commit():
            result = call()
        if existing is not None:
            assert (result.created, result.withdrawal.pk) == (False, existing)
            return
        assert result.created
        model.requests[key] = result.withdrawal.pk
        model.wallet -= amount
        self.withdrawals.append(WithdrawalModel(pk=result.withdrawal.pk, rider=rider.pk, amount=amount))
        if then is not None:
            self._decide(self.withdrawals[-1], first_approver, then)

    def _recent(self, index: int) -> WithdrawalModel:
        """One of the newest few withdrawals: a second approval or a late rejection meets its first one."""
        return self.withdrawals[-1 - index % len(self.withdrawals)]

    @precondition(lambda self: self.withdrawals)
    @rule(
        index=st.integers(0, 1),
        first_approver=st.booleans(),
        decision=st.sampled_from(DECISIONS),
    )
    def decide(self, index, first_approver, decision):
        """A later decision on one of the newest withdrawals (a second approval, a late rejection, a repeat)."""
        self._decide(self._recent(index), first_approver, decision)

    def _decide(self, withdrawal: WithdrawalModel, first_approver: bool, decision: str) -> None:
        """Finance approves (with or without the payout reference) or rejects; the user is the one who approved
        it first, or the other one. "maker then checker": one approves, the other approves again."""
        first = next((u for u in self.finance if u.pk == withdrawal.approver), self.finance[0])
        other = next(u for u in self.finance if u.pk != first.pk)
        if decision == "reject":
            self._reject(withdrawal, first if first_approver else other)
        elif decision == "maker then checker":
            self._approve(withdrawal, first, with_reference=True)
            self._approve(withdrawal, other, with_reference=True)
        else:
            self._approve(withdrawal, first if first_approver else other, with_reference=decision == "approve")

    def _approve(self, withdrawal: WithdrawalModel, user, *, with_reference: bool) -> None:
        with self._commit():
            decisions = services.withdrawals_approve(
                withdrawal_ids=[withdrawal.pk], actor=user, payout_reference="UTR" if with_reference else ""
            )
        if withdrawal.status == W.REQUESTED and withdrawal.amount > DUAL:
            assert decisions.awaiting_second == [withdrawal.pk]
            withdrawal.status, withdrawal.approver = W.APPROVED, user.pk
        elif withdrawal.status in (W.REQUESTED, W.APPROVED) and withdrawal.approver != user.pk and with_reference:
            assert decisions.paid == [withdrawal.pk]
            withdrawal.status = W.PAID
        else:
            assert list(decisions.refused) == [withdrawal.pk]

    def _reject(self, withdrawal: WithdrawalModel, user) -> None:
        with self._commit():
            decisions = services.withdrawals_reject(withdrawal_ids=[withdrawal.pk], actor=user, reason="r")
        if withdrawal.status in (W.REQUESTED, W.APPROVED):
            assert decisions.rejected == [withdrawal.pk]
            withdrawal.status = W.REJECTED
            self.model[withdrawal.rider].wallet += withdrawal.amount
        else:
            assert list(decisions.refused) == [withdrawal.pk]

    @rule(who=st.integers(0, 1), amount=st.sampled_from([50_00, 100_00, 300_00]), receipt=st.sampled_from(["r1", "r2"]))
    def deposit_cod(self, who, amount, receipt):
        rider = self._rider(who)
        model = self.model[rider.pk]
        call = lambda: services.cod_deposit_record(  # noqa: E731
            rider_id=rider.pk, amount_paise=amount, receipt=receipt, actor=self.finance[0]
        )
        if receipt in model.receipts:
            if model.receipts[receipt] != amount:
                with pytest.raises(services.IdempotencyKeyReused):
                    call()
            else:
                with self._commit():
                    assert not call().created
            return
        if amount > -model.cod:
            with pytest.raises(services.DepositExceedsCodHeld):
                call()
            return
        with self._commit():
            assert call().created
        model.receipts[receipt] = amount
        model.cod += amount

    # --- Helpers and invariants --------------------------------------------------------------------------

    def _withdrawal(self, pk: int) -> WithdrawalModel:
        return next(w for w in self.withdrawals if w.pk == pk)

    def _today(self, rider_id: int) -> int:
        return sum(w.amount for w in self.withdrawals if w.rider == rider_id and w.status != W.REJECTED)

    @invariant()
    def balances_equal_the_ledger_and_the_model(self):
        entries = list(
            LedgerEntry.objects.filter(rider__in=self.riders).values_list(
                "id", "rider_id", "account", "entry_type", "amount_paise", "reverses_id"
            )
        )
        balances = {b.rider_id: b for b in Balance.objects.filter(rider__in=self.riders)}
        for rider in self.riders:
            mine = [e for e in entries if e[1] == rider.pk]
            ledger = (
                sum(e[4] for e in mine if e[2] == Account.WALLET),
                sum(e[4] for e in mine if e[2] == Account.COD),
                len(mine),
            )
            balance = balances.get(rider.pk)
            assert (balance.wallet_paise, balance.cod_paise, balance.entry_count) == ledger
            assert balance.wallet_paise >= 0
            assert (balance.wallet_paise, balance.cod_paise) == (self.model[rider.pk].wallet, self.model[rider.pk].cod)
        # Every withdrawal: its hold is a WITHDRAWAL of its amount, reversed once exactly when it was rejected.
        by_id = {e[0]: e for e in entries}
        reversed_ids = [e[5] for e in entries if e[3] == EntryType.REVERSAL]
        rows = {w.pk: w for w in WithdrawalRequest.objects.filter(pk__in=[w.pk for w in self.withdrawals])}
        for expected in self.withdrawals:
            row = rows[expected.pk]
            assert row.status == expected.status
            hold = by_id[row.hold_entry_id]
            assert (hold[3], hold[4]) == (EntryType.WITHDRAWAL, -expected.amount)
            assert reversed_ids.count(hold[0]) == (1 if expected.status == W.REJECTED else 0)

    @invariant()
    def the_cached_summary_is_the_database(self):
        for rider in self.riders:
            summary = wallet_summary(rider_id=rider.pk).value
            pending = [w for w in self.withdrawals if w.rider == rider.pk and w.status in (W.REQUESTED, W.APPROVED)]
            assert (summary["wallet_paise"], summary["cod_paise"]) == (
                self.model[rider.pk].wallet,
                self.model[rider.pk].cod,
            )
            assert (summary["held_count"], summary["held_paise"]) == (len(pending), sum(w.amount for w in pending))


@pytest.fixture
def wallet_rules(settings):
    settings.WALLET_WITHDRAWAL_MIN_PAISE = MIN
    settings.WALLET_WITHDRAWAL_MAX_PAISE = MAX
    settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE = CAP
    settings.WALLET_DUAL_APPROVAL_ABOVE_PAISE = DUAL


def test_random_wallet_histories_keep_every_invariant(wallet_rules):
    run_state_machine_as_test(
        WalletMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
