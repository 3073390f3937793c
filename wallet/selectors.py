"""Wallet reads: what a rider owes the fleet in cash (for other apps), the rider's wallet and statement,
who may approve payouts, and what reconciliation found.

A rider's COD account goes negative as they collect cash on delivery and back up as they hand it in
(``Balance.cod_paise``, kept equal to the ledger in the posting's transaction). Cash held is therefore
``max(0, -cod_paise)``; a rider with no balance row yet holds none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db.models import BigIntegerField, Count, Expression, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from wallet.cache import Cached, summary_cached
from wallet.models import (
    Account,
    Balance,
    LedgerEntry,
    ReconciliationDrift,
    ReconciliationRun,
    WithdrawalRequest,
    WithdrawalStatus,
)


def rider_cod_held_paise(*, rider_id: int) -> int:
    """Unsettled cash on delivery the rider collected and has not handed in yet, in paise (never negative)."""
    cod_paise = Balance.objects.filter(rider_id=rider_id).values_list("cod_paise", flat=True).first()
    return max(0, -(cod_paise or 0))


def rider_cod_held_paise_expression(rider_ref: str = "pk") -> Expression:
    """``rider_cod_held_paise`` as an SQL expression over a query of riders (``OuterRef(rider_ref)``).

    For dispatch's one eligibility query: a correlated read of the balance row by its primary key.
    """
    cod_paise = Subquery(Balance.objects.filter(rider_id=OuterRef(rider_ref)).values("cod_paise")[:1])
    return Greatest(-Coalesce(cod_paise, Value(0)), Value(0), output_field=BigIntegerField())


# --- The rider's wallet -------------------------------------------------------------------------------

#: How many of the newest entries the wallet summary carries (older ones page through the entry list).
SUMMARY_ENTRIES = 10
PENDING_STATUSES = (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED)


def wallet_summary(*, rider_id: int) -> Cached:
    """The rider's balances, pending withdrawal holds and newest entries, as plain data; from Redis when
    cached (``hit``), else three queries (and stored for the next read). See ``wallet.cache``."""
    return summary_cached(rider_id, partial(_summary_load, rider_id))


def _summary_load(rider_id: int) -> dict[str, Any]:
    balance = Balance.objects.filter(rider_id=rider_id).values("wallet_paise", "cod_paise").first()
    held = WithdrawalRequest.objects.filter(rider_id=rider_id, status__in=PENDING_STATUSES).aggregate(
        count=Count("id"), total=Sum("amount_paise")
    )
    entries = list(
        LedgerEntry.objects.filter(rider_id=rider_id).order_by("-id").values(*ENTRY_FIELDS)[:SUMMARY_ENTRIES]
    )
    return {
        "wallet_paise": balance["wallet_paise"] if balance else 0,
        "cod_paise": balance["cod_paise"] if balance else 0,
        "held_count": held["count"],
        "held_paise": held["total"] or 0,
        "entries": entries,
    }


ENTRY_FIELDS = ("id", "account", "entry_type", "amount_paise", "order_id", "reverses_id", "memo", "created_at")


def ledger_entry_list(*, rider_id: int) -> QuerySet[LedgerEntry]:
    """The rider's entries (one partition: the table is hashed by rider), for cursor pages by ``-id``."""
    return LedgerEntry.objects.filter(rider_id=rider_id).only(*ENTRY_FIELDS, "rider_id")


def withdrawal_list(*, rider_id: int) -> QuerySet[WithdrawalRequest]:
    return WithdrawalRequest.objects.filter(rider_id=rider_id)


def withdrawals_pending(*, rider_id: int) -> QuerySet[WithdrawalRequest]:
    """The rider's requests whose hold is still on (not paid, not rejected), oldest first."""
    return WithdrawalRequest.objects.filter(rider_id=rider_id, status__in=PENDING_STATUSES).order_by("requested_at")


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    entry_id: int | None
    account: str
    entry_type: str
    memo: str
    order_id: int | None
    amount_paise: int
    wallet_after_paise: int
    cod_after_paise: int


def statement_lines(*, rider_id: int, start: datetime, end: datetime) -> Iterator[StatementLine]:
    """The rider's statement for [start, end): an OPENING line with both balances at ``start``, then every
    entry in time order with the balances after it. Two queries however long; entries stream in chunks."""
    opening = LedgerEntry.objects.filter(rider_id=rider_id, created_at__lt=start).aggregate(
        wallet=Sum("amount_paise", filter=Q(account=Account.WALLET)),
        cod=Sum("amount_paise", filter=Q(account=Account.COD)),
    )
    wallet, cod = opening["wallet"] or 0, opening["cod"] or 0
    yield StatementLine(start, None, "", "OPENING", "Opening balance", None, 0, wallet, cod)
    rows = (
        LedgerEntry.objects.filter(rider_id=rider_id, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "id")
        .values_list("created_at", "id", "account", "entry_type", "memo", "order_id", "amount_paise")
    )
    for at, entry_id, account, entry_type, memo, order_id, amount in rows.iterator(chunk_size=2000):
        if account == Account.WALLET:
            wallet += amount
        else:
            cod += amount
        yield StatementLine(at, entry_id, account, entry_type, memo, order_id, amount, wallet, cod)


def user_is_finance(user: Any) -> bool:
    """Active staff in the auth group named by ``settings.FINANCE_GROUP``: who may approve and reject
    withdrawals. Asked once per request (kept on the user object)."""
    known = getattr(user, "_fleetops_is_finance", None)
    if known is None:
        known = bool(
            user is not None
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and user.groups.filter(name=settings.FINANCE_GROUP).exists()
        )
        user._fleetops_is_finance = known
    return known


# --- Reconciliation -----------------------------------------------------------------------------------


def reconciliation_runs() -> QuerySet[ReconciliationRun]:
    return ReconciliationRun.objects.order_by("-started_at")


def reconciliation_latest() -> ReconciliationRun | None:
    return reconciliation_runs().first()


def reconciliation_drifts(*, rider_id: int | None = None) -> QuerySet[ReconciliationDrift]:
    """Drift found by reconciliation runs, newest run first, with the run and the rider joined."""
    drifts = ReconciliationDrift.objects.select_related("run", "rider")
    if rider_id is not None:
        drifts = drifts.filter(rider_id=rider_id)
    return drifts.order_by("-run__started_at", "rider_id")


def payouts_paid(*, start: datetime, end: datetime) -> QuerySet[WithdrawalRequest]:
    """Withdrawals paid out in [start, end), in payout order."""
    return WithdrawalRequest.objects.filter(
        status=WithdrawalStatus.PAID, decided_at__gte=start, decided_at__lt=end
    ).order_by("decided_at", "pk")
