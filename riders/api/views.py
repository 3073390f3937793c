"""Driver API: sign-up, sign-in, profile, KYC, vehicle, duty, hours of service, SOS. Thin: services decide."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from config.api.pagination import CursorPage
from config.api.parsers import JSONParser
from config.api.views import ApiView, validated
from config.errors import NotFound
from fleet.models import City
from riders import selectors, services
from riders.api.serializers import (
    EmergencyAlertOut,
    HoursOfServiceOut,
    KycDocumentOut,
    RiderOut,
    TokenOut,
    VehicleOut,
)
from riders.models import DutyStatus, KycDocumentType, Rider


class IsRider(BasePermission):
    message = "This endpoint is for rider accounts."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and hasattr(request.user, "rider"))


def current_rider(request: Request) -> Rider:
    return request.user.rider  # type: ignore[union-attr]


class MobileField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            return services.normalize_mobile(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class CityField(serializers.SlugRelatedField):
    """An active city by its code."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:  # PostgreSQL refuses NUL in text: a 500 if it got there
            self.fail("invalid")
        return super().to_internal_value(data)


class SignupApi(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    idempotent_post = True
    error_statuses = (409,)

    class Input(serializers.Serializer):
        mobile = MobileField(max_length=20)
        name = serializers.CharField(max_length=120)
        city = CityField(slug_field="code", queryset=City.objects.filter(is_active=True))
        password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            # An unsaved user stands in for the one sign-up creates, so a password too like the mobile or
            # the name is refused as well.
            user = User(username=attrs["mobile"], first_name=attrs["name"][:150])
            try:
                validate_password(attrs["password"], user=user)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}) from exc
            return attrs

    @extend_schema(request=Input, responses={201: TokenOut}, summary="Sign up as a rider (KYC pending)")
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        rider, token = services.rider_signup(**data)
        profile = selectors.rider_profile(rider_id=rider.pk)
        return Response({"token": token, "rider": RiderOut(profile).data}, status=status.HTTP_201_CREATED)


class TokenApi(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    ratelimit_scope = "login"
    error_statuses = (422,)

    class Input(serializers.Serializer):
        mobile = serializers.CharField(max_length=20)
        password = serializers.CharField(write_only=True, max_length=128)

    def get_authenticators(self) -> list[Any]:
        """Signing in needs no token; signing out (DELETE) is done with the token it revokes."""
        if self._signing_out():
            # DRF's settings import the classes; mypy sees their dotted names
            return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]  # type: ignore[operator]
        return []

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated()] if self._signing_out() else [AllowAny()]

    def _signing_out(self) -> bool:
        # The schema generator asks with no request, per operation with its method.
        request = getattr(self, "request", None)
        return getattr(request, "method", None) == "DELETE"

    @extend_schema(request=Input, responses={200: TokenOut}, summary="Sign in: mobile and password to a token")
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        rider, token = services.rider_token_issue(**data)
        return Response({"token": token, "rider": RiderOut(selectors.rider_profile(rider_id=rider.pk)).data})

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Sign out: revoke this token",
        description="The token sent is deleted; every later request with it is a 401. Sign in again for a new one.",
    )
    def delete(self, request: Request) -> Response:
        services.rider_token_revoke(user_ids=[cast(int, request.user.pk)])  # IsAuthenticated: a saved user
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfileApi(ApiView):
    permission_classes = [IsRider]

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=120, required=False)
        language = serializers.CharField(max_length=8, required=False)
        emergency_contact_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
        emergency_contact_mobile = MobileField(max_length=20, required=False, allow_blank=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            unknown = set(self.initial_data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({f: ["This field cannot be changed."] for f in sorted(unknown)})
            return attrs

    @extend_schema(responses={200: RiderOut}, summary="Your profile")
    def get(self, request: Request) -> Response:
        return Response(RiderOut(selectors.rider_profile(rider_id=current_rider(request).pk)).data)

    @extend_schema(request=Input, responses={200: RiderOut}, summary="Change your name, language or emergency contact")
    def patch(self, request: Request) -> Response:
        changes = validated(self.Input, request)
        rider = services.rider_profile_update(rider_id=current_rider(request).pk, changes=changes)
        return Response(RiderOut(selectors.rider_profile(rider_id=rider.pk)).data)


class NewestUploadsFirst(CursorPage):
    ordering = ("-uploaded_at", "-id")


class KycDocumentListApi(ApiView, ListAPIView):
    permission_classes = [IsRider]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    serializer_class = KycDocumentOut
    idempotent_post = True
    error_statuses = (413,)
    pagination_class = NewestUploadsFirst

    class Input(serializers.Serializer):
        doc_type = serializers.ChoiceField(choices=KycDocumentType.choices)
        file = serializers.FileField(allow_empty_file=False)
        number = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")

    def get_queryset(self) -> Any:
        return selectors.kyc_document_list(rider_id=current_rider(self.request).pk)

    @extend_schema(summary="Your KYC documents and their review status, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": Input},
        responses={201: KycDocumentOut},
        summary="Upload a KYC document (JPEG, PNG, WebP or PDF, at most 5 MB)",
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        document = services.kyc_document_upload(
            rider_id=current_rider(request).pk, doc_type=data["doc_type"], upload=data["file"], number=data["number"]
        )
        return Response(KycDocumentOut(document).data, status=status.HTTP_201_CREATED)


class KycDocumentDetailApi(ApiView):
    permission_classes = [IsRider]

    @extend_schema(responses={200: KycDocumentOut}, summary="One of your KYC documents")
    def get(self, request: Request, document_id: int) -> Response:
        document = selectors.kyc_document_list(rider_id=current_rider(request).pk).filter(pk=document_id).first()
        if document is None:
            raise NotFound("No such document.")
        return Response(KycDocumentOut(document).data)


class VehicleApi(ApiView):
    permission_classes = [IsRider]
    error_statuses = (404,)

    @extend_schema(responses={200: VehicleOut}, summary="Your assigned vehicle")
    def get(self, request: Request) -> Response:
        rider = selectors.rider_profile(rider_id=current_rider(request).pk)
        if rider.vehicle is None:
            raise NotFound("No vehicle is assigned to you yet.", code="no_vehicle")
        return Response(VehicleOut(rider.vehicle).data)


class DutyApi(ApiView):
    permission_classes = [IsRider]
    error_statuses = (422,)

    class Input(serializers.Serializer):
        status = serializers.ChoiceField(choices=[DutyStatus.ON, DutyStatus.OFF])

    @extend_schema(request=Input, responses={200: RiderOut}, summary="Go on or off duty")
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        rider = services.rider_duty_set(rider_id=current_rider(request).pk, status=data["status"])
        return Response(RiderOut(selectors.rider_profile(rider_id=rider.pk)).data)


class HoursOfServiceApi(ApiView):
    permission_classes = [IsRider]

    @extend_schema(responses={200: HoursOfServiceOut}, summary="Your hours of service: used, limits, left")
    def get(self, request: Request) -> Response:
        hos = selectors.rider_hos(rider_id=current_rider(request).pk)
        return Response(HoursOfServiceOut(hos).data)


class EmergencyApi(ApiView):
    permission_classes = [IsRider]
    idempotent_post = True

    class Input(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True, default=None)
        lon = serializers.FloatField(min_value=-180, max_value=180, required=False, allow_null=True, default=None)
        message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if (attrs["lat"] is None) != (attrs["lon"] is None):
                raise serializers.ValidationError("Send both lat and lon, or neither.")
            return attrs

    @extend_schema(request=Input, responses={201: EmergencyAlertOut}, summary="Raise an SOS")
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        alert = services.emergency_alert_raise(rider=current_rider(request), **data)
        return Response(EmergencyAlertOut(alert).data, status=status.HTTP_201_CREATED)
