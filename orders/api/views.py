"""Order API: partners and ops push, read, assign, cancel, rate and track orders; riders work theirs. Thin:
services decide, selectors read, the API's exception handler maps their errors to HTTP."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.pagination import CursorPage
from config.api.parsers import JSONParser
from config.api.views import ApiView, IsStaffOrPartner, partner_scope, validated, validated_query
from config.errors import NotFound
from fleet import selectors as fleet_selectors
from orders import selectors, services
from orders.api.serializers import (
    DriverOrderOut,
    MetadataField,
    MoneyField,
    OrderDetailOut,
    OrderOut,
    PlaceIn,
    RatingOut,
)
from orders.assignment import offer_reject, order_assign
from orders.models import Order, OrderStatus
from orders.services import FailureReason, OrderIntake, Place, RiderStep
from riders.api.views import IsRider, current_rider


class NewestFirst(CursorPage):
    ordering = ("-created_at", "-id")


class CityCodeField(serializers.CharField):
    """An active city by its code, in any case; answers the canonical code. An unknown one is a 400."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "City code, e.g. BLR (any case); an unknown or inactive city is a 400.")
        super().__init__(max_length=16, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        code = super().to_internal_value(data)
        # Validators run after this, and the code goes to PostgreSQL here: check what they would first.
        if len(code) > 16:
            self.fail("max_length", max_length=16)
        if "\x00" in code:
            self.fail("invalid")
        city = fleet_selectors.city_active(code=code)
        if city is None:
            raise serializers.ValidationError("No active city has this code.")
        return city.code


def _detail(order_id: int, request: Request) -> Order:
    order = selectors.order_detail(order_id=order_id, created_by_id=partner_scope(request))
    if order is None:
        raise NotFound("No such order.")
    return order


def _ensure_visible(order_id: int, request: Request) -> None:
    """Partners act only on orders they created: any other id is a 404, as if it did not exist."""
    if not selectors.order_exists(order_id=order_id, created_by_id=partner_scope(request)):
        raise NotFound("No such order.")


# --- Partners and ops --------------------------------------------------------------------------------------


class OrderListApi(ApiView, ListAPIView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"
    serializer_class = OrderOut
    pagination_class = NewestFirst
    idempotent_post = True
    error_statuses = (409,)

    class Input(serializers.Serializer):
        external_ref = serializers.CharField(max_length=64, help_text="Your own reference; unique across orders.")
        city = CityCodeField()
        pickup = PlaceIn()
        drop = PlaceIn()
        delivery_fee = MoneyField(help_text='What the delivery earns, e.g. "45.00".')
        cod_amount = MoneyField(required=False, default=0, help_text='Cash to collect at the drop; "0.00" if none.')
        metadata = MetadataField(required=False, default=dict, help_text="Your data about the order (≤ 16 KB).")

    class Filters(serializers.Serializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        city = CityCodeField(required=False)
        rider = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, help_text="Rider id.")
        created_after = serializers.DateTimeField(required=False, help_text="Created at or after this time.")
        created_before = serializers.DateTimeField(required=False, help_text="Created before this time.")

    def get_queryset(self) -> Any:
        filters = validated_query(self.Filters, self.request)
        return selectors.order_list(
            created_by_id=partner_scope(self.request),
            status=filters.get("status"),
            city_code=filters.get("city"),
            rider_id=filters.get("rider"),
            created_after=filters.get("created_after"),
            created_before=filters.get("created_before"),
        )

    @extend_schema(
        parameters=[Filters],
        summary="Your orders (staff: every order), newest first, filtered",
        description="Partners see the orders they created; staff see all. Unknown filter values (a city code, a "
        "status) are a 400 on the parameter.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=Input,
        responses={201: OrderDetailOut, 200: OrderDetailOut},
        summary="Push an order (idempotent by external_ref)",
        description="201 with the new order. The same `external_ref` with the same body again answers 200 with "
        "the order already stored (no second order); with a different body, or pushed by another account, it is "
        "a 409 `external_ref_conflict`. Amounts are decimal strings with at most 2 places.",
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        intake = OrderIntake(
            external_ref=data["external_ref"],
            city_code=data["city"],
            pickup=Place(**data["pickup"]),
            drop=Place(**data["drop"]),
            delivery_fee_paise=data["delivery_fee"],
            cod_amount_paise=data["cod_amount"],
            metadata=data["metadata"],
        )
        result = services.order_intake(intake=intake, actor=request.user)
        if result.event is not None:  # new: answered from what was written
            order = selectors.order_detail_of_new(order=result.order, event=result.event, actor=request.user)
        else:
            order = _detail(result.order.pk, request)
        body = OrderDetailOut(order).data
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class OrderDetailApi(ApiView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"

    @extend_schema(responses={200: OrderDetailOut}, summary="One order with its history and offers")
    def get(self, request: Request, order_id: int) -> Response:
        return Response(OrderDetailOut(_detail(order_id, request)).data)


class OrderAssignApi(ApiView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"
    error_statuses = (409, 422)

    class Input(serializers.Serializer):
        rider_id = serializers.IntegerField(
            min_value=1,
            max_value=2**63 - 1,
            required=False,
            allow_null=True,
            default=None,
            help_text="The rider to offer it to; leave it out for the nearest available rider.",
        )

    @extend_schema(
        request=Input,
        responses={200: OrderDetailOut},
        summary="Offer the order to a rider, or to the nearest available one",
        description="`{}` finds the nearest on-duty, available rider in the order's city (422 `no_rider_available` "
        'when there is none); `{"rider_id": n}` offers it to that rider (422 when the rider cannot take it). '
        "An order already picked up or closed is a 409 `illegal_transition`.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = validated(self.Input, request)
        _ensure_visible(order_id, request)
        order_assign(order_id=order_id, actor=request.user, rider_id=data["rider_id"])
        return Response(OrderDetailOut(_detail(order_id, request)).data)


class OrderCancelApi(ApiView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"
    error_statuses = (409, 422)

    class Input(serializers.Serializer):
        reason = serializers.CharField(max_length=255, help_text="Why; kept on the order and its history.")

    @extend_schema(
        request=Input,
        responses={200: OrderDetailOut},
        summary="Cancel an order before pickup",
        description="A pending offer is withdrawn. Once picked up (or closed) it is a 409 `illegal_transition`.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = validated(self.Input, request)
        _ensure_visible(order_id, request)
        services.order_cancel(order_id=order_id, actor=request.user, reason=data["reason"])
        return Response(OrderDetailOut(_detail(order_id, request)).data)


class OrderRatingApi(ApiView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"
    error_statuses = (409,)

    class Input(serializers.Serializer):
        stars = serializers.IntegerField(min_value=1, max_value=5)
        comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    @extend_schema(
        request=Input,
        responses={201: RatingOut},
        summary="Rate the rider of a delivered order (once)",
        description="Before delivery it is a 409 `not_delivered`; a second rating is a 409 `already_rated`.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = validated(self.Input, request)
        _ensure_visible(order_id, request)
        services.order_rate(order_id=order_id, actor=request.user, stars=data["stars"], comment=data["comment"])
        return Response(RatingOut(selectors.order_rating(order_id=order_id)).data, status=status.HTTP_201_CREATED)


_POSITION = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
    "description": "[lon, lat], as GeoJSON orders them.",
}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}


def _feature(geometry_type: str, coordinates: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {
                "type": "object",
                "required": ["type", "coordinates"],
                "properties": {"type": {"type": "string", "enum": [geometry_type]}, "coordinates": coordinates},
            },
            "properties": {"type": "object", "required": list(properties), "properties": properties},
        },
    }


TRACK_SCHEMA = {
    "type": "object",
    "description": "A GeoJSON FeatureCollection (RFC 7946): the route, then the pickup and the drop.",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {
            "type": "array",
            "items": {
                "oneOf": [
                    _feature(
                        "LineString",
                        {
                            "type": "array",
                            "items": _POSITION,
                            "description": "Oldest point first; empty before pickup.",
                        },
                        {
                            "kind": {"type": "string", "enum": ["route"]},
                            "order_id": {"type": "integer"},
                            "status": {"type": "string", "enum": OrderStatus.values},
                            "rider_id": {"type": "integer", "nullable": True},
                            "started_at": {**_NULLABLE_TIME, "description": "Pickup; null before it."},
                            "ended_at": {
                                **_NULLABLE_TIME,
                                "description": "Delivery (or failure); null while under way.",
                            },
                            "points": {"type": "integer"},
                            "distance_m": {"type": "integer", "description": "Along the line, metres."},
                            "truncated": {"type": "boolean", "description": "True when only the first points came."},
                        },
                    ),
                    _feature(
                        "Point",
                        _POSITION,
                        {"kind": {"type": "string", "enum": ["pickup", "drop"]}, "address": {"type": "string"}},
                    ),
                ]
            },
        },
    },
}


class OrderTrackApi(ApiView):
    permission_classes = [IsStaffOrPartner]
    ratelimit_scope = "partner"

    @extend_schema(
        responses={200: OpenApiResponse(response=TRACK_SCHEMA, description="GeoJSON FeatureCollection")},
        summary="The trip as GeoJSON: the rider's route from pickup to delivery, and its length",
        description="The route is a LineString of the rider's GPS points recorded between pickup and delivery "
        "(while under way: until now); an order never picked up has an empty one. `distance_m` is the "
        "great-circle length along it. Pickup and drop follow as Point features.",
    )
    def get(self, request: Request, order_id: int) -> Response:
        track = selectors.order_track(order_id=order_id, created_by_id=partner_scope(request), now=timezone.now())
        if track is None:
            raise NotFound("No such order.")
        order = track.order
        time = serializers.DateTimeField()
        route = {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in track.points]},
            "properties": {
                "kind": "route",
                "order_id": order.pk,
                "status": order.status,
                "rider_id": order.rider_id,
                "started_at": time.to_representation(track.started_at) if track.started_at else None,
                "ended_at": time.to_representation(track.ended_at) if track.ended_at else None,
                "points": len(track.points),
                "distance_m": track.distance_m,
                "truncated": track.truncated,
            },
        }
        places = [
            ("pickup", order.pickup_lat, order.pickup_lon, order.pickup_address),
            ("drop", order.drop_lat, order.drop_lon, order.drop_address),
        ]
        features = [route] + [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"kind": kind, "address": address},
            }
            for kind, lat, lon, address in places
        ]
        return Response({"type": "FeatureCollection", "features": features})


# --- Riders ------------------------------------------------------------------------------------------------


class DriverOrderListApi(ApiView, ListAPIView):
    permission_classes = [IsRider]
    serializer_class = DriverOrderOut
    pagination_class = NewestFirst

    def get_queryset(self) -> Any:
        return selectors.rider_orders_active(rider_id=current_rider(self.request).pk)

    @extend_schema(summary="Your orders offered to you (ASSIGNED), accepted or picked up, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class DriverOrderStatusApi(ApiView):
    permission_classes = [IsRider]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    error_statuses = (409, 413, 415, 422)

    class Input(serializers.Serializer):
        status = serializers.ChoiceField(choices=[(s.value, s.label) for s in services.RIDER_STEPS])
        lat = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True, default=None)
        lon = serializers.FloatField(min_value=-180, max_value=180, required=False, allow_null=True, default=None)
        otp = serializers.CharField(
            max_length=6, required=False, allow_blank=True, default="", help_text="DELIVERED: the customer's OTP."
        )
        photo = serializers.FileField(
            required=False,
            allow_null=True,
            default=None,
            allow_empty_file=False,
            help_text="DELIVERED: a photo at the drop (JPEG, PNG or WebP, at most 5 MB); multipart only.",
        )
        reason = serializers.ChoiceField(
            choices=[(code, code) for code in FailureReason.CODES],
            required=False,
            allow_blank=True,
            default="",
            help_text="FAILED: why.",
        )
        note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if (attrs["lat"] is None) != (attrs["lon"] is None):
                raise serializers.ValidationError("Send both lat and lon, or neither.")
            return attrs

    @extend_schema(
        request={"application/json": Input, "multipart/form-data": Input},
        responses={200: DriverOrderOut},
        summary="Report a step of your order: ACCEPTED, PICKED_UP, DELIVERED or FAILED",
        description="DELIVERED needs proof, the customer's `otp` or a `photo` (multipart), and a position within "
        "300 m of the drop (`lat`/`lon` sent, else your last known one): 422 `proof_required`, `wrong_otp`, "
        "`too_far_from_drop`, `photo_outside_trip`; a photo over 5 MB is a 413, not an image a 415. FAILED needs "
        "a `reason` (422 `reason_required`). A step the order cannot take is a 409 `illegal_transition` naming "
        "its status; the status it already has answers the order unchanged. Another rider's order is a 404.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = validated(self.Input, request)
        rider = current_rider(request)
        step = RiderStep(
            status=data["status"],
            lat=data["lat"],
            lon=data["lon"],
            otp=data["otp"],
            photo=data["photo"],
            reason=data["reason"],
            note=data["note"],
        )
        services.order_rider_step(order_id=order_id, rider_id=rider.pk, actor=request.user, step=step)
        order = selectors.rider_order(order_id=order_id, rider_id=rider.pk)
        if order is None:  # taken off the rider between the step and this read (a dispatcher reassigned it)
            raise NotFound("No such order.")
        return Response(DriverOrderOut(order).data)


class DriverOrderRejectApi(ApiView):
    permission_classes = [IsRider]

    class Input(serializers.Serializer):
        """No fields: the body may be left out, and one sent is parsed like any other (a JSON object)."""

    @extend_schema(
        request=Input,
        responses={204: None},
        summary="Decline an order offered to you; it goes to the next rider",
        description="Only an order offered to you and not yet accepted (ASSIGNED, your offer pending): anything "
        "else is a 404.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        validated(self.Input, request)
        offer_reject(order_id=order_id, rider_id=current_rider(request).pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
