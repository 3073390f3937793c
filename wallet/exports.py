"""CSV the wallet hands out: the rider's statement (API) and the payouts of a date range (admin).

Both stream: rows are written as the query's chunks arrive, so a year of entries costs the same memory as a
day. Text cells that a spreadsheet would run as a formula are defused with a leading ``'``; amounts are
written as plain decimals (a negative balance is a number, not a formula).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from wallet import selectors
from wallet.money import paise_text

# Spreadsheet programs run a text cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def text_cell(value: str | None) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _time_cell(value: datetime | None) -> str:
    return timezone.localtime(value).isoformat() if value is not None else ""


STATEMENT_HEADER = [
    "at",
    "entry_id",
    "account",
    "type",
    "description",
    "order_id",
    "credit",
    "debit",
    "wallet_balance",
    "cod_balance",
]


def statement_csv(*, rider_id: int, start: datetime, end: datetime) -> Iterator[str]:
    """The rider's statement for [start, end): header, opening balances, then every entry with the balances
    after it (``selectors.statement_lines``)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(STATEMENT_HEADER)
    for line in selectors.statement_lines(rider_id=rider_id, start=start, end=end):
        yield writer.writerow(
            [
                _time_cell(line.at),
                line.entry_id or "",
                line.account,
                line.entry_type,
                text_cell(line.memo),
                line.order_id or "",
                paise_text(line.amount_paise) if line.amount_paise > 0 else "",
                paise_text(-line.amount_paise) if line.amount_paise < 0 else "",
                paise_text(line.wallet_after_paise),
                paise_text(line.cod_after_paise),
            ]
        )


PAYOUT_HEADER = [
    "withdrawal_id",
    "rider_id",
    "rider_name",
    "rider_mobile",
    "amount",
    "payout_reference",
    "approved_by",
    "second_approved_by",
    "requested_at",
    "approved_at",
    "paid_at",
]


def payouts_csv(withdrawals: QuerySet[Any]) -> Iterator[str]:
    """One row per paid withdrawal of ``withdrawals`` (``selectors.payouts_paid``), in one streamed query."""
    writer = csv.writer(_Echo())
    yield writer.writerow(PAYOUT_HEADER)
    rows = withdrawals.values_list(
        "pk",
        "rider_id",
        "rider__name",
        "rider__mobile",
        "amount_paise",
        "payout_reference",
        "approved_by__username",
        "second_approved_by__username",
        "requested_at",
        "approved_at",
        "decided_at",
    )
    for pk, rider_id, name, mobile, amount, reference, first, second, requested, approved, paid in rows.iterator(
        chunk_size=2000
    ):
        yield writer.writerow(
            [
                pk,
                rider_id,
                text_cell(name),
                text_cell(mobile),
                paise_text(amount),
                text_cell(reference),
                text_cell(first),
                text_cell(second),
                _time_cell(requested),
                _time_cell(approved),
                _time_cell(paid),
            ]
        )
