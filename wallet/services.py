"""Wallet writes. Every posting goes through ``ledger_entry_post``.

Locks (``wallet.locks``): a rider's balance row before any withdrawal row; withdrawal rows in id order. A
delivery's postings run inside the order's transaction, after its order lock. Every write that changes what a
rider's wallet summary shows starts a new cache generation after commit (``wallet.cache``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from config import metrics
from config.errors import Conflict, DomainError, RuleViolation
from config.migration_sql import read_sql
from wallet import cache as wallet_cache
from wallet import locks
from wallet.models import (
    Account,
    EntryType,
    LedgerEntry,
    LedgerKey,
    ReconciliationRun,
    WithdrawalRequest,
    WithdrawalStatus,
)
from wallet.money import paise_text
from wallet.selectors import user_is_finance

logger = logging.getLogger("fleetops.wallet")

Actor = AbstractBaseUser | AnonymousUser


class InsufficientBalance(RuleViolation):
    code = "insufficient_balance"


class AmountBelowMinimum(RuleViolation):
    code = "amount_below_minimum"


class AmountAboveMaximum(RuleViolation):
    code = "amount_above_maximum"


class DailyCapExceeded(RuleViolation):
    code = "daily_cap_exceeded"


class IdempotencyKeyReused(Conflict):
    """A key already posted (or requested) with different content: a bug or a replay gone wrong, never merged."""

    code = "idempotency_key_reused"


class NotFinance(DomainError):
    code = "not_finance"


class AlreadyDecided(Conflict):
    code = "withdrawal_already_decided"


class SecondApproverRequired(RuleViolation):
    code = "second_approver_required"


class PayoutReferenceRequired(RuleViolation):
    code = "payout_reference_required"


class ReasonRequired(RuleViolation):
    code = "reason_required"


class DepositExceedsCodHeld(RuleViolation):
    code = "deposit_exceeds_cod_held"


class InvalidAmount(RuleViolation):
    code = "invalid_amount"


# --- The posting primitive ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    entry: LedgerEntry
    created: bool


#: The entry's columns as ``_POST_SQL`` selects them after ``outcome, balance_paise``: the model's concrete
#: fields in their order, so ``LedgerEntry.from_db`` builds the instance positionally.
_ENTRY_COLUMNS = [
    "id",
    "rider_id",
    "account",
    "entry_type",
    "amount_paise",
    "idempotency_key",
    "order_id",
    "reverses_id",
    "memo",
    "created_by_id",
    "created_at",
]
_POST_SQL = (
    "SELECT outcome, balance_paise, id, rider_id, account, entry_type, amount_paise, idempotency_key, order_id, "
    "reverses_id, memo, created_by_id, created_at FROM wallet_ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def ledger_entry_post(
    *,
    rider_id: int,
    entry_type: str,
    amount_paise: int,
    idempotency_key: str,
    account: str = Account.WALLET,
    order_id: int | None = None,
    reverses_id: int | None = None,
    memo: str = "",
    created_by_id: int | None = None,
) -> Posting:
    """Appends one entry to the ledger and moves the rider's balance by its amount.

    One statement, ``wallet_ledger_post`` (``wallet/sql/0003_ledger_post.sql``), so one round trip: it locks
    the rider's balance row first (``SELECT ... FOR UPDATE``, creating the row if missing), so postings of one
    rider serialise, and under that lock checks the key, checks the balance, inserts the entry and moves the
    balance. One statement is atomic: a failure after the insert leaves neither the entry nor the balance
    change. Idempotent: a key already posted returns the existing entry and posts nothing; the same key with
    another rider, account, type or amount is ``IdempotencyKeyReused``. A wallet debit that would take the
    balance below zero raises ``InsufficientBalance`` and writes nothing (the caller's transaction stays
    usable). Not durable on purpose: it joins the caller's transaction (a delivery posts its earning inside
    the order transition, so both commit or neither does); alone, it is its own transaction. After the
    outermost commit, the rider's cached wallet summary is invalidated.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _POST_SQL,
            [
                rider_id,
                account,
                entry_type,
                amount_paise,
                idempotency_key,
                order_id,
                reverses_id,
                memo[:255],
                created_by_id,
            ],
        )
        outcome, balance_paise, *columns = cursor.fetchone()
    if outcome == "insufficient":
        raise InsufficientBalance(
            f"Your balance of {paise_text(balance_paise)} cannot cover {paise_text(-amount_paise)}."
        )
    if outcome == "mismatch":
        raise IdempotencyKeyReused(f"The key {idempotency_key!r} was posted with different content.")
    entry = LedgerEntry.from_db(connection.alias, _ENTRY_COLUMNS, columns)
    if outcome == "created":
        transaction.on_commit(partial(wallet_cache.summary_invalidate, rider_id))
        transaction.on_commit(metrics.LEDGER_POSTINGS.labels(type=entry_type).inc)
    return Posting(entry=entry, created=outcome == "created")


# --- Deliveries -----------------------------------------------------------------------------------------


def order_delivery_post(*, order_id: int, rider_id: int, delivery_fee_paise: int, cod_amount_paise: int) -> None:
    """Posts a delivery's earning (``earning:<order>``) and, with cash on delivery, the cash the rider now
    holds (``cod:<order>``, a COD debit).

    Runs inside the delivery's transaction (``orders.events.order_delivered``), after its order lock. Keyed
    by the order, so a replayed delivery posts nothing new. A free delivery earns nothing (a ledger entry is
    never zero).
    """
    if delivery_fee_paise > 0:
        ledger_entry_post(
            rider_id=rider_id,
            entry_type=EntryType.EARNING,
            amount_paise=delivery_fee_paise,
            idempotency_key=f"earning:{order_id}",
            order_id=order_id,
            memo=f"Delivery of order {order_id}",
        )
    if cod_amount_paise > 0:
        ledger_entry_post(
            rider_id=rider_id,
            entry_type=EntryType.COD_COLLECTED,
            account=Account.COD,
            amount_paise=-cod_amount_paise,
            idempotency_key=f"cod:{order_id}",
            order_id=order_id,
            memo=f"Cash collected for order {order_id}",
        )


# --- Withdrawals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalResult:
    withdrawal: WithdrawalRequest
    created: bool


def request_key(client_key: str) -> str:
    """What a rider's ``Idempotency-Key`` is stored as: its SHA-256 (any length in, 64 characters out)."""
    return hashlib.sha256(client_key.encode()).hexdigest()


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the portal's time zone (``TIME_ZONE``)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic(durable=True)
def withdrawal_request(
    *, rider_id: int, amount_paise: int, idempotency_key: str, now: datetime | None = None
) -> WithdrawalResult:
    """The rider asks to be paid ``amount_paise``: the hold (a WITHDRAWAL debit) is posted at once.

    Locks the rider's balance row, so concurrent requests of one rider run one after the other and the
    balance and the daily cap are checked against what the others left. ``idempotency_key`` (the stored
    form, ``request_key``) already used by the rider returns that request (``created=False``), or is
    ``IdempotencyKeyReused`` for another amount. Refusals, checked in this order:
    ``AmountBelowMinimum`` / ``AmountAboveMaximum`` (``WALLET_WITHDRAWAL_MIN_PAISE`` / ``_MAX_PAISE``),
    ``DailyCapExceeded`` (requests of the local day, rejected ones not counted, against
    ``WALLET_WITHDRAWAL_DAILY_CAP_PAISE``), ``InsufficientBalance``.
    """
    now = now or timezone.now()
    balance = locks.lock_balance(rider_id)
    existing = WithdrawalRequest.objects.filter(rider_id=rider_id, idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.amount_paise != amount_paise:
            raise IdempotencyKeyReused("This Idempotency-Key was already used for a withdrawal of another amount.")
        return WithdrawalResult(withdrawal=existing, created=False)
    if amount_paise < settings.WALLET_WITHDRAWAL_MIN_PAISE:
        raise AmountBelowMinimum(f"The smallest withdrawal is {paise_text(settings.WALLET_WITHDRAWAL_MIN_PAISE)}.")
    if amount_paise > settings.WALLET_WITHDRAWAL_MAX_PAISE:
        raise AmountAboveMaximum(f"The largest withdrawal is {paise_text(settings.WALLET_WITHDRAWAL_MAX_PAISE)}.")
    today = (
        WithdrawalRequest.objects.filter(rider_id=rider_id, requested_at__gte=local_day_start(now))
        .exclude(status=WithdrawalStatus.REJECTED)
        .aggregate(total=Sum("amount_paise"))["total"]
        or 0
    )
    cap = settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE
    if today + amount_paise > cap:
        raise DailyCapExceeded(
            f"Withdrawals are capped at {paise_text(cap)} a day; {paise_text(max(0, cap - today))} is left today."
        )
    if balance.wallet_paise < amount_paise:
        raise InsufficientBalance(
            f"Your balance of {paise_text(balance.wallet_paise)} cannot cover {paise_text(amount_paise)}."
        )
    withdrawal = WithdrawalRequest.objects.create(
        rider_id=rider_id, amount_paise=amount_paise, idempotency_key=idempotency_key
    )
    hold = ledger_entry_post(
        rider_id=rider_id,
        entry_type=EntryType.WITHDRAWAL,
        amount_paise=-amount_paise,
        idempotency_key=f"withdrawal:{withdrawal.pk}",
        memo=f"Withdrawal {withdrawal.pk} requested",
    )
    withdrawal.hold_entry_id = hold.entry.pk
    withdrawal.save(update_fields=["hold_entry_id"])
    return WithdrawalResult(withdrawal=withdrawal, created=True)


@dataclass
class Decisions:
    """What a bulk approval or rejection did, per withdrawal id."""

    paid: list[int] = field(default_factory=list)
    awaiting_second: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        parts = []
        if self.paid:
            parts.append(f"{len(self.paid)} paid")
        if self.awaiting_second:
            parts.append(f"{len(self.awaiting_second)} approved, awaiting a second finance approver")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        for withdrawal_id, why in sorted(self.refused.items()):
            parts.append(f"#{withdrawal_id} not changed: {why}")
        return "; ".join(parts) or "Nothing changed."


def _ensure_finance(actor: Actor) -> None:
    if not user_is_finance(actor):
        raise NotFinance(f"Only staff in the {settings.FINANCE_GROUP!r} group may approve or reject withdrawals.")


def _approve_one(withdrawal: WithdrawalRequest, *, actor: Actor, payout_reference: str, now: datetime) -> bool:
    """Applies one approval to a locked withdrawal; True when it is now PAID, False when it awaits a second."""
    needs_two = withdrawal.amount_paise > settings.WALLET_DUAL_APPROVAL_ABOVE_PAISE
    if withdrawal.status == WithdrawalStatus.REQUESTED and needs_two:
        withdrawal.status = WithdrawalStatus.APPROVED
        withdrawal.approved_by_id = actor.pk
        withdrawal.approved_at = now
        withdrawal.save(update_fields=["status", "approved_by", "approved_at"])
        return False
    if withdrawal.status == WithdrawalStatus.APPROVED and withdrawal.approved_by_id == actor.pk:
        raise SecondApproverRequired("You approved it already; a second finance user must approve the payout.")
    if withdrawal.status not in (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED):
        raise AlreadyDecided(f"It is {withdrawal.status} already.")
    if not payout_reference:
        raise PayoutReferenceRequired("Paying out needs the payout reference.")
    if withdrawal.status == WithdrawalStatus.APPROVED:
        withdrawal.second_approved_by_id = actor.pk
    else:
        withdrawal.approved_by_id = actor.pk
        withdrawal.approved_at = now
    withdrawal.status = WithdrawalStatus.PAID
    withdrawal.payout_reference = payout_reference
    withdrawal.decided_at = now
    withdrawal.save(
        update_fields=["status", "approved_by", "approved_at", "second_approved_by", "payout_reference", "decided_at"]
    )
    return True


@transaction.atomic(durable=True)
def withdrawals_approve(
    *, withdrawal_ids: Iterable[int], actor: Actor, payout_reference: str = "", now: datetime | None = None
) -> Decisions:
    """Finance approves withdrawals: paid out with ``payout_reference``, or, above
    ``WALLET_DUAL_APPROVAL_ABOVE_PAISE``, first approved and paid only when a *different* finance user
    approves it again (maker-checker; the database refuses one user in both roles too).

    Locks the withdrawals in id order; the money already left the balance with the hold, so no balance
    changes. Each withdrawal that cannot move (decided already, same approver, no reference for a payout) is
    listed in ``refused`` and the others go ahead. ``NotFinance`` unless the actor is staff in
    ``FINANCE_GROUP``.
    """
    _ensure_finance(actor)
    now = now or timezone.now()
    reference = payout_reference.strip()[:64]
    decisions = Decisions()
    for withdrawal in locks.lock_withdrawals(withdrawal_ids):
        try:
            paid = _approve_one(withdrawal, actor=actor, payout_reference=reference, now=now)
        except DomainError as exc:
            decisions.refused[withdrawal.pk] = exc.message
            continue
        (decisions.paid if paid else decisions.awaiting_second).append(withdrawal.pk)
        transaction.on_commit(partial(wallet_cache.summary_invalidate, withdrawal.rider_id))
    return decisions


@transaction.atomic(durable=True)
def withdrawals_reject(
    *, withdrawal_ids: Iterable[int], actor: Actor, reason: str, now: datetime | None = None
) -> Decisions:
    """Finance rejects withdrawals not paid yet: each hold is reversed (a REVERSAL credit pointing at it,
    key ``withdrawal-reversal:<id>``) and the money is back in the rider's balance.

    Locks the riders' balance rows (rider id order), then the withdrawals (id order). Paid or rejected ones
    are listed in ``refused``. ``ReasonRequired`` for a blank reason; ``NotFinance`` as for approval.
    """
    _ensure_finance(actor)
    reason = reason.strip()[:255]
    if not reason:
        raise ReasonRequired("Say why the withdrawal is rejected; the rider sees it.")
    now = now or timezone.now()
    ids = set(withdrawal_ids)
    locks.lock_balances(WithdrawalRequest.objects.filter(pk__in=ids).values_list("rider_id", flat=True))
    decisions = Decisions()
    for withdrawal in locks.lock_withdrawals(ids):
        if withdrawal.status not in (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED):
            decisions.refused[withdrawal.pk] = f"It is {withdrawal.status} already."
            continue
        hold = None
        if withdrawal.hold_entry_id is not None:
            hold = LedgerEntry.objects.filter(rider_id=withdrawal.rider_id, id=withdrawal.hold_entry_id).first()
        if hold is None:
            decisions.refused[withdrawal.pk] = "It has no hold entry to reverse."
            continue
        reversal = ledger_entry_post(
            rider_id=withdrawal.rider_id,
            entry_type=EntryType.REVERSAL,
            amount_paise=-hold.amount_paise,
            idempotency_key=f"withdrawal-reversal:{withdrawal.pk}",
            reverses_id=hold.pk,
            memo=f"Withdrawal {withdrawal.pk} rejected: {reason}",
            created_by_id=actor.pk,
        )
        withdrawal.status = WithdrawalStatus.REJECTED
        withdrawal.rejection_reason = reason
        withdrawal.decided_at = now
        withdrawal.release_entry_id = reversal.entry.pk
        withdrawal.save(update_fields=["status", "rejection_reason", "decided_at", "release_entry_id"])
        decisions.rejected.append(withdrawal.pk)
    return decisions


# --- Cash on delivery handed in -------------------------------------------------------------------------


@transaction.atomic(durable=True)
def cod_deposit_record(*, rider_id: int, amount_paise: int, receipt: str, actor: Actor, memo: str = "") -> Posting:
    """Ops record cash a rider handed in: a COD_DEPOSIT credit on the COD account, up to the cash held.

    Keyed by the rider and the ``receipt`` (the cash receipt or bank slip number), so recording one receipt
    twice posts once; the same receipt with another amount is ``IdempotencyKeyReused``. More than the rider
    holds is ``DepositExceedsCodHeld`` (a miscount is corrected before it is posted, not after).
    """
    receipt = receipt.strip()
    if amount_paise <= 0:
        raise InvalidAmount("A deposit is a positive amount.")
    if not receipt or len(receipt) > 64:
        raise ReasonRequired("A deposit needs its receipt number (at most 64 characters).")
    key = f"cod-deposit:{rider_id}:{receipt}"
    balance = locks.lock_balance(rider_id)
    already = LedgerKey.objects.filter(idempotency_key=key).exists()
    if not already and amount_paise > -balance.cod_paise:
        raise DepositExceedsCodHeld(
            f"The rider holds {paise_text(max(0, -balance.cod_paise))} of cash; {paise_text(amount_paise)} is more."
        )
    return ledger_entry_post(
        rider_id=rider_id,
        entry_type=EntryType.COD_DEPOSIT,
        account=Account.COD,
        amount_paise=amount_paise,
        idempotency_key=key,
        memo=(memo.strip() or f"Cash handed in, receipt {receipt}")[:255],
        created_by_id=actor.pk,
    )


# --- Reconciliation -------------------------------------------------------------------------------------


@cache
def _reconcile_sql() -> str:
    return read_sql("wallet", "reconcile.sql")


def ledger_reconcile(*, log_limit: int = 100) -> ReconciliationRun:
    """Proves balance == sum(entries), per account and entry count, for every rider, in one SQL statement.

    One statement is one snapshot: a posting commits its entry and its balance change together, so a
    concurrent posting is seen whole or not at all and never looks like drift. Riders that disagree are
    recorded as ``ReconciliationDrift`` rows of the run and logged at ERROR (the first ``log_limit``); nothing
    is corrected. Takes no locks.
    """
    started_at = timezone.now()
    clock = time.perf_counter()
    with transaction.atomic(durable=True):
        run = ReconciliationRun.objects.create(started_at=started_at)
        with connection.cursor() as cursor:
            cursor.execute(_reconcile_sql(), {"run_id": run.pk})
            riders, entries, drift = cursor.fetchone()
        run.riders_checked, run.entries_checked, run.drift_count = int(riders), int(entries), int(drift)
        run.finished_at = timezone.now()
        run.duration_ms = round((time.perf_counter() - clock) * 1000)
        run.save(update_fields=["riders_checked", "entries_checked", "drift_count", "finished_at", "duration_ms"])
    if run.drift_count:
        for row in run.drifts.order_by("rider_id")[:log_limit]:
            logger.error(
                "wallet drift: rider %s balance wallet=%s cod=%s entries=%s, ledger wallet=%s cod=%s entries=%s "
                "(run %s; not corrected)",
                row.rider_id,
                row.balance_wallet_paise,
                row.balance_cod_paise,
                row.balance_entry_count,
                row.ledger_wallet_paise,
                row.ledger_cod_paise,
                row.ledger_entry_count,
                run.pk,
            )
        logger.error(
            "wallet reconciliation run %s: %s of %s riders drift from the ledger (%s entries, %s ms)",
            run.pk,
            run.drift_count,
            run.riders_checked,
            run.entries_checked,
            run.duration_ms,
        )
    else:
        logger.info(
            "wallet reconciliation run %s: %s riders, %s entries, no drift (%s ms)",
            run.pk,
            run.riders_checked,
            run.entries_checked,
            run.duration_ms,
        )
    return run
