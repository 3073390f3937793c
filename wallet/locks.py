"""Row locks of the wallet, always taken in one order so two lockers never deadlock.

The order, across the whole project: an order row (``orders.locks``, a delivery) before balance rows;
balance rows (by rider id) before withdrawal rows (by id). Nothing in the wallet locks an order, and
nothing that holds a withdrawal lock goes on to lock a balance.
"""

from __future__ import annotations

from collections.abc import Iterable

from wallet.models import Balance, WithdrawalRequest


def lock_balance(rider_id: int) -> Balance:
    """Locks (creating it if missing) the rider's balance row: ``SELECT ... FOR UPDATE``.

    Every posting takes this same lock first (inside ``wallet_ledger_post``), so a rider's postings
    serialise and the balance row always equals the sum of the rider's entries when the transaction
    commits. A service that checks something before posting (a withdrawal's cap and balance) takes it
    here first, so what it checked still holds when it posts. The common case is one query; a first
    lock inserts the row (``ON CONFLICT DO NOTHING``: two at once both go on to lock the one row).
    """
    balance = Balance.objects.select_for_update().filter(rider_id=rider_id).first()
    if balance is None:
        Balance.objects.bulk_create([Balance(rider_id=rider_id)], ignore_conflicts=True)
        balance = Balance.objects.select_for_update().get(rider_id=rider_id)
    return balance


def lock_balances(rider_ids: Iterable[int]) -> dict[int, Balance]:
    """Locks the balance rows of several riders in rider id order (creating the missing ones)."""
    return {rider_id: lock_balance(rider_id) for rider_id in sorted(set(rider_ids))}


def lock_withdrawals(withdrawal_ids: Iterable[int]) -> list[WithdrawalRequest]:
    """``SELECT ... FOR UPDATE`` on the withdrawal requests, in id order; returns them in that order.

    Callers that also post (a rejection's reversal) lock the riders' balances first.
    """
    return list(
        WithdrawalRequest.objects.select_for_update(of=("self",))
        .select_related("rider")
        .filter(pk__in=set(withdrawal_ids))
        .order_by("pk")
    )
