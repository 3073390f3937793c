"""Serializers of the wallet API: amounts are decimal strings with two places, held in paise."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from wallet.models import Account, EntryType, WithdrawalStatus
from wallet.money import paise_parse, paise_text


class AmountField(serializers.DecimalField):
    """An amount to move, as a string of digits with at most two decimal places (``"500.00"``); paise inside.

    Only a string is taken: a JSON number may already have lost the paise on its way through a float.
    """

    default_error_messages = {
        "not_a_string": 'Send the amount as a string, e.g. "500.00".',
        "format": 'Write the amount as digits with at most 2 decimal places, e.g. "500.00".',
        "not_positive": "The amount must be more than 0.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), coerce_to_string=True, **kwargs)

    def to_internal_value(self, data: Any) -> int:  # type: ignore[override]
        if not isinstance(data, str):
            self.fail("not_a_string")
        paise = paise_parse(data)
        if paise is None:
            self.fail("format")
        if paise <= 0:
            self.fail("not_positive")
        return paise

    def to_representation(self, value: Any) -> str:
        return paise_text(int(value))


class PaiseField(serializers.DecimalField):
    """A signed amount in paise answered as a decimal string, e.g. ``"-1250.50"``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=20, decimal_places=2, coerce_to_string=True, read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return paise_text(int(value))


class EntryOut(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.ChoiceField(choices=Account.choices, help_text="WALLET, or COD: cash on delivery.")
    type = serializers.ChoiceField(source="entry_type", choices=EntryType.choices)
    amount = PaiseField(source="amount_paise", help_text="Positive credits you, negative debits you.")
    order_id = serializers.IntegerField(allow_null=True, help_text="The delivered order, for earnings and COD.")
    reverses_id = serializers.IntegerField(allow_null=True, help_text="The entry a REVERSAL undoes.")
    memo = serializers.CharField()
    created_at = serializers.DateTimeField()


class PendingOut(serializers.Serializer):
    count = serializers.IntegerField(source="held_count")
    amount = PaiseField(source="held_paise")


class LimitsOut(serializers.Serializer):
    minimum = PaiseField(help_text="Smallest withdrawal.")
    maximum = PaiseField(help_text="Largest withdrawal.")
    daily_cap = PaiseField(help_text="Most you can request in one local day (rejected requests do not count).")


class WalletOut(serializers.Serializer):
    """Built from ``selectors.wallet_summary`` plus ``cod_held_paise`` and the ``limits`` of the settings."""

    balance = PaiseField(
        source="wallet_paise", help_text="Available to withdraw: earnings and incentives, less withdrawals and holds."
    )
    pending_withdrawals = PendingOut(source="*", help_text="Withdrawals requested and held, not paid yet.")
    cod_balance = PaiseField(
        source="cod_paise", help_text="Cash-on-delivery account: negative while you hold customers' cash."
    )
    cod_held = PaiseField(source="cod_held_paise", help_text="Customers' cash you hold and have not handed in.")
    withdrawal_limits = LimitsOut(source="limits")
    entries = EntryOut(many=True, help_text="Your newest entries; page through all at /api/v1/driver/wallet/entries/.")


class WithdrawalOut(serializers.Serializer):
    id = serializers.IntegerField()
    amount = PaiseField(source="amount_paise")
    status = serializers.ChoiceField(
        choices=WithdrawalStatus.choices,
        help_text="REQUESTED (held from your balance), APPROVED (first of two approvals), PAID, or REJECTED "
        "(the hold is back in your balance).",
    )
    requested_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True, help_text="When it was paid or rejected.")
    payout_reference = serializers.CharField(help_text="The bank or UPI reference of the payout, once PAID.")
    rejection_reason = serializers.CharField(help_text="Why it was rejected, once REJECTED.")
