"""Serializers of the order API: the partner's order, its history and offers, the rider's view of it, and the
fields an order's input is made of (inputs themselves live next to their views)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import OfferStatus, Order, OrderEvent, OrderOffer, OrderStatus, ProofMethod
from riders.models import Rating

# --- Input fields ----------------------------------------------------------------------------------------

_MONEY = re.compile(r"\d{1,10}(\.\d{1,2})?")


class MoneyField(serializers.DecimalField):
    """An amount as a decimal string with at most 2 places (``"45.00"``), at least 0; held in minor units.

    Only a string is taken: a JSON number may already have lost the paise on its way through a float.
    """

    default_error_messages = {
        "not_a_string": 'Send the amount as a string, e.g. "45.00".',
        "format": 'Write the amount as digits with at most 2 decimal places, e.g. "45.00".',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0"), coerce_to_string=True, **kwargs)

    def to_internal_value(self, data: Any) -> int:  # type: ignore[override]
        if not isinstance(data, str):
            self.fail("not_a_string")
        value = super().to_internal_value(data)
        if not _MONEY.fullmatch(data.strip()):
            self.fail("format")
        return int(value * 100)  # exact: at most 2 places

    def to_representation(self, value: Any) -> str:
        return str(super().to_representation(Decimal(int(value)).scaleb(-2)))


def _nul_or_surrogate(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def _has_bad_text(value: Any) -> bool:
    """Whether a key or string anywhere in the JSON value has a NUL (PostgreSQL's jsonb refuses it) or a lone
    surrogate (not UTF-8). Walked with a stack, not recursion: the value may be as deep as the parser allows."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _nul_or_surrogate(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.Field):
    """The partner's own data about the order: a JSON object of at most ``ORDER_METADATA_MAX_BYTES`` (its
    compact UTF-8 JSON), stored and answered as sent."""

    default_error_messages = {
        "not_an_object": "Send a JSON object.",
        "too_large": "The metadata is {size} bytes of JSON; at most {limit} are allowed.",
        "bad_text": "Text in the metadata may not contain NUL characters or lone surrogates.",
        "too_deep": "The metadata is nested too deeply.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        if _has_bad_text(data):
            self.fail("bad_text")
        try:
            size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
        except RecursionError:
            self.fail("too_deep")
        except ValueError:  # NaN or Infinity: the JSON parser refuses them already; a form cannot send them
            self.fail("not_an_object")
        limit = settings.ORDER_METADATA_MAX_BYTES
        if size > limit:
            self.fail("too_large", size=size, limit=limit)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class PlaceIn(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    address = serializers.CharField(max_length=500)


# --- Output --------------------------------------------------------------------------------------------


class PickupOut(serializers.Serializer):
    lat = serializers.FloatField(source="pickup_lat")
    lon = serializers.FloatField(source="pickup_lon")
    address = serializers.CharField(source="pickup_address")


class DropOut(serializers.Serializer):
    lat = serializers.FloatField(source="drop_lat")
    lon = serializers.FloatField(source="drop_lon")
    address = serializers.CharField(source="drop_address")


class RiderBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OrderOut(serializers.ModelSerializer):
    """An order as partners and ops see it (in lists: no history)."""

    city = serializers.CharField(source="city.code", help_text="City code, e.g. BLR.")
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    rider = RiderBriefOut(allow_null=True, help_text="The rider it is offered to or carried by; null before.")
    pickup = PickupOut(source="*")
    drop = DropOut(source="*")
    delivery_fee = MoneyField(source="delivery_fee_paise")
    cod_amount = MoneyField(source="cod_amount_paise", help_text="Cash the rider collects at the drop.")
    metadata = MetadataField()
    delivery_otp = serializers.CharField(
        help_text="Give it to the customer: the rider enters it at the drop as proof of delivery."
    )
    proof_method = serializers.ChoiceField(
        choices=ProofMethod.choices, allow_blank=True, help_text="How the delivery was proved; empty before."
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "external_ref",
            "city",
            "status",
            "rider",
            "pickup",
            "drop",
            "delivery_fee",
            "cod_amount",
            "metadata",
            "delivery_otp",
            "is_flagged",
            "offer_attempts",
            "cancel_reason",
            "failure_reason",
            "proof_method",
            "created_at",
            "updated_at",
            "assigned_at",
            "accepted_at",
            "picked_up_at",
            "delivered_at",
            "closed_at",
        ]
        read_only_fields = fields


class ActorOut(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[("system", "system"), ("staff", "staff"), ("partner", "partner"), ("rider", "rider")],
        help_text="system: the portal itself (expiry, automatic assignment).",
    )
    id = serializers.IntegerField(allow_null=True, help_text="The user; null for the system.")
    name = serializers.CharField()


class PositionOut(serializers.Serializer):
    lat = serializers.FloatField()
    lon = serializers.FloatField()


class OrderEventOut(serializers.ModelSerializer):
    from_status = serializers.SerializerMethodField()
    to_status = serializers.ChoiceField(choices=OrderStatus.choices)
    rider = RiderBriefOut(allow_null=True, help_text="The rider the step concerned.")
    actor = serializers.SerializerMethodField()
    position = serializers.SerializerMethodField()

    class Meta:
        model = OrderEvent
        fields = ["id", "from_status", "to_status", "rider", "actor", "position", "note", "occurred_at"]

    @extend_schema_field(
        serializers.ChoiceField(
            choices=OrderStatus.choices, allow_null=True, help_text="Null on the event that created the order."
        )
    )
    def get_from_status(self, event: OrderEvent) -> str | None:
        return event.from_status or None

    @extend_schema_field(ActorOut)
    def get_actor(self, event: OrderEvent) -> dict[str, Any]:
        actor = event.actor
        if actor is None:
            return {"kind": "system", "id": None, "name": ""}
        if event.rider is not None and event.rider.user_id == actor.pk:
            return {"kind": "rider", "id": actor.pk, "name": event.rider.name}
        kind = "staff" if actor.is_staff else "partner"
        return {"kind": kind, "id": actor.pk, "name": actor.get_full_name() or actor.get_username()}

    @extend_schema_field(PositionOut(allow_null=True))
    def get_position(self, event: OrderEvent) -> dict[str, float] | None:
        if event.lat is None or event.lon is None:
            return None
        return {"lat": event.lat, "lon": event.lon}


class OrderOfferOut(serializers.ModelSerializer):
    rider = RiderBriefOut()
    status = serializers.ChoiceField(choices=OfferStatus.choices)
    distance_m = serializers.IntegerField(allow_null=True, help_text="Rider to pickup when offered, metres.")

    class Meta:
        model = OrderOffer
        fields = ["id", "rider", "status", "distance_m", "offered_at", "expires_at", "answered_at"]


class RatingOut(serializers.ModelSerializer):
    order_id = serializers.IntegerField()
    rider_id = serializers.IntegerField()

    class Meta:
        model = Rating
        fields = ["order_id", "rider_id", "stars", "comment", "created_at"]


class OrderDetailOut(OrderOut):
    """An order with its whole history: every transition (who, where, when) and every offer."""

    events = OrderEventOut(many=True)
    offers = OrderOfferOut(many=True)
    rating = serializers.SerializerMethodField()
    has_proof_photo = serializers.SerializerMethodField(help_text="Staff open the photo in the admin.")

    class Meta(OrderOut.Meta):
        fields = [*OrderOut.Meta.fields, "has_proof_photo", "rating", "events", "offers"]
        read_only_fields = fields

    @extend_schema_field(RatingOut(allow_null=True))
    def get_rating(self, order: Order) -> dict[str, Any] | None:
        rating = getattr(order, "rating", None)  # the reverse one-to-one raises when there is none
        return RatingOut(rating).data if rating is not None else None

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_proof_photo(self, order: Order) -> bool:
        return bool(order.proof_photo)


class DriverOrderOut(serializers.ModelSerializer):
    """An order as its rider sees it: where to go, what to collect. Never the delivery OTP: the customer
    holds it and gives it to the rider at the drop."""

    city = serializers.CharField(source="city.code")
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    pickup = PickupOut(source="*")
    drop = DropOut(source="*")
    delivery_fee = MoneyField(source="delivery_fee_paise")
    cod_amount = MoneyField(source="cod_amount_paise", help_text="Cash to collect from the customer.")
    metadata = MetadataField(help_text="The partner's notes about the order (items, instructions).")
    offer_expires_at = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "external_ref",
            "city",
            "status",
            "pickup",
            "drop",
            "delivery_fee",
            "cod_amount",
            "metadata",
            "offer_expires_at",
            "created_at",
            "assigned_at",
            "accepted_at",
            "picked_up_at",
            "delivered_at",
            "closed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.DateTimeField(
            allow_null=True, help_text="While the order is offered to you (ASSIGNED): accept it before this time."
        )
    )
    def get_offer_expires_at(self, order: Order) -> str | None:
        pending = getattr(order, "pending_offers", None) or []
        return serializers.DateTimeField().to_representation(pending[0].expires_at) if pending else None
