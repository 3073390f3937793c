"""Output serializers of the driver API (inputs live next to their view)."""

from __future__ import annotations

from rest_framework import serializers

from fleet.models import City, Vehicle
from riders.models import EmergencyAlert, KycDocument, Rider


class CityOut(serializers.ModelSerializer):
    class Meta:
        model = City
        fields = ["code", "name"]


class VehicleOut(serializers.ModelSerializer):
    class Meta:
        model = Vehicle
        fields = ["id", "kind", "registration", "order_capacity", "load_capacity_kg"]


class RiderOut(serializers.ModelSerializer):
    city = CityOut()
    vehicle = VehicleOut(allow_null=True)
    average_rating = serializers.SerializerMethodField()
    rating_count = serializers.SerializerMethodField()

    class Meta:
        model = Rider
        fields = [
            "id",
            "mobile",
            "name",
            "city",
            "status",
            "kyc_status",
            "kyc_rejection_reason",
            "duty_status",
            "vehicle",
            "language",
            "emergency_contact_name",
            "emergency_contact_mobile",
            "average_rating",
            "rating_count",
        ]

    def get_average_rating(self, rider: Rider) -> float | None:
        value = getattr(rider, "average_rating", None)
        return round(float(value), 2) if value is not None else None

    def get_rating_count(self, rider: Rider) -> int:
        return int(getattr(rider, "rating_count", 0) or 0)


class KycDocumentOut(serializers.ModelSerializer):
    class Meta:
        model = KycDocument
        fields = ["id", "doc_type", "number", "status", "rejection_reason", "content_type", "size_bytes", "uploaded_at"]


class EmergencyAlertOut(serializers.ModelSerializer):
    class Meta:
        model = EmergencyAlert
        fields = ["id", "status", "lat", "lon", "message", "raised_at"]


class HoursOfServiceOut(serializers.Serializer):
    minutes_today = serializers.IntegerField()
    minutes_7d = serializers.IntegerField()
    daily_limit_minutes = serializers.IntegerField()
    weekly_limit_minutes = serializers.IntegerField()
    minutes_left = serializers.IntegerField()


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    rider = RiderOut()
