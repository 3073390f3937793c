"""Wallet reads: what a rider owes the fleet in cash (for other apps).

A rider's COD account goes negative as they collect cash on delivery and back up as they hand it in
(``Balance.cod_paise``, kept equal to the ledger in the posting's transaction). Cash held is therefore
``max(0, -cod_paise)``; a rider with no balance row yet holds none.
"""

from __future__ import annotations

from django.db.models import BigIntegerField, Expression, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from wallet.models import Balance


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
