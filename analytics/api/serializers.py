"""Analytics API serializers: output only (the endpoints read)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers


class CityCodeParam(serializers.RegexField):
    """A city code, in any case; answers it upper case, as stored. Whether an active city has it is the
    selector's question (asked only when the figures are not cached): an unknown one is a 400 too."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "City code, e.g. BLR (any case); an unknown or inactive city is a 400.")
        super().__init__(r"^[-a-zA-Z0-9_]+$", max_length=16, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return str(super().to_internal_value(data)).upper()


class PaiseAmountField(serializers.DecimalField):
    """Paise out as a decimal string with two places (``12345`` -> ``"123.45"``), like every amount of the API."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=18, decimal_places=2, coerce_to_string=True, read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return str(super().to_representation(Decimal(int(value)).scaleb(-2)))


class OrdersByStatusOut(serializers.Serializer):
    created = serializers.IntegerField(source="orders_created")
    assigned = serializers.IntegerField(source="orders_assigned")
    accepted = serializers.IntegerField(source="orders_accepted")
    picked_up = serializers.IntegerField(source="orders_picked_up")
    delivered = serializers.IntegerField(source="orders_delivered")
    cancelled = serializers.IntegerField(source="orders_cancelled")
    failed = serializers.IntegerField(source="orders_failed")


class DashboardStatsOut(serializers.Serializer):
    city = serializers.CharField(source="city_code")
    day = serializers.DateField(allow_null=True, help_text="The portal's local day that 'today' means here.")
    active_riders = serializers.IntegerField(help_text="Riders whose account is active and KYC approved.")
    on_duty_riders = serializers.IntegerField()
    orders_today = serializers.IntegerField(help_text="Orders created today.")
    orders_today_by_status = OrdersByStatusOut(source="*", help_text="Orders created today, by their status now.")
    delivered_today = serializers.IntegerField(help_text="Orders delivered today, whenever they were created.")
    average_delivery_s = serializers.FloatField(
        allow_null=True, help_text="Mean seconds from creation to delivery over today's deliveries; null if none."
    )
    distance_today_m = serializers.IntegerField(help_text="Metres the city's riders travelled today (GPS).")
    cod_outstanding = PaiseAmountField(
        source="cod_outstanding_paise", help_text="Cash on delivery the city's riders hold, not yet handed in."
    )
    refreshed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the figures were computed; null for a city added since."
    )


class LeaderboardRiderOut(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 is the top earner; ties share a rank.")
    rider_id = serializers.IntegerField()
    name = serializers.CharField(source="rider_name")
    earnings = PaiseAmountField(source="earnings_paise", help_text="Earnings and incentives in the period.")
    completed_orders = serializers.IntegerField(help_text="Orders delivered in the period.")
    average_rating = serializers.FloatField(allow_null=True, help_text="Mean stars of the period; null if none.")
    ratings = serializers.IntegerField(help_text="Ratings received in the period.")


class LeaderboardOut(serializers.Serializer):
    city = serializers.CharField(source="city_code")
    period_starts_at = serializers.DateTimeField(
        allow_null=True, help_text="The period is the 7 days before refreshed_at."
    )
    refreshed_at = serializers.DateTimeField(allow_null=True)
    riders = LeaderboardRiderOut(many=True)
