"""Wallet writes. Every posting goes through ``ledger_entry_post``."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from config.errors import RuleViolation
from wallet import locks
from wallet.models import Account, Balance, LedgerEntry, LedgerKey


class InsufficientBalance(RuleViolation):
    code = "insufficient_balance"


@dataclass(frozen=True)
class Posting:
    entry: LedgerEntry
    created: bool


@transaction.atomic
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

    Locks the rider's balance row first (``locks.lock_balance``), so postings of one rider
    serialise. Idempotent: a key already posted returns the existing entry and posts nothing.
    A wallet debit that would take the balance below zero raises ``InsufficientBalance``.
    Not durable on purpose: it joins the caller's transaction (a delivery posts its earning inside
    the order transition, so both commit or neither does).
    """
    balance = locks.lock_balance(rider_id)
    # Checked under the balance lock: a second posting with this key waits for the first to commit.
    claimed = LedgerKey.objects.filter(idempotency_key=idempotency_key).first()
    if claimed is not None:
        return Posting(entry=LedgerEntry.objects.get(rider_id=claimed.rider_id, id=claimed.entry_id), created=False)
    if account == Account.WALLET and balance.wallet_paise + amount_paise < 0:
        raise InsufficientBalance(
            f"Balance {balance.wallet_paise} paise cannot cover a debit of {-amount_paise} paise."
        )
    entry = LedgerEntry.objects.create(
        rider_id=rider_id,
        account=account,
        entry_type=entry_type,
        amount_paise=amount_paise,
        idempotency_key=idempotency_key,
        order_id=order_id,
        reverses_id=reverses_id,
        memo=memo,
        created_by_id=created_by_id,
    )
    field = "wallet_paise" if account == Account.WALLET else "cod_paise"
    Balance.objects.filter(rider_id=rider_id).update(
        **{field: F(field) + amount_paise}, entry_count=F("entry_count") + 1
    )
    return Posting(entry=entry, created=True)
