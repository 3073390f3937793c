"""Row locks of the wallet, always taken in primary-key order."""

from __future__ import annotations

from wallet.models import Balance


def lock_balance(rider_id: int) -> Balance:
    """Locks (creating it if missing) the rider's balance row: ``SELECT ... FOR UPDATE``.

    Every posting holds this lock, so a rider's postings serialise and the balance row always
    equals the sum of the rider's entries when the transaction commits.
    """
    Balance.objects.get_or_create(rider_id=rider_id)
    return Balance.objects.select_for_update().get(rider_id=rider_id)
