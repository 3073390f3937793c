"""Fleet API: the driver app's GPS batches, and the on-duty riders nearest a point. Thin: services decide."""

from __future__ import annotations

from dataclasses import asdict

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from config import metrics
from config.api.views import ApiView, IsStaff, validated, validated_query
from fleet import selectors, services
from fleet.api.serializers import LocationBatchOut, NearbyRiderOut, PointList
from riders.api.views import IsRider, current_rider

#: The widest search dispatch may ask for; a city-wide list is the dashboard's job, not this endpoint's.
NEARBY_MAX_RADIUS_KM = 50.0


class LocationBatchApi(ApiView):
    """Not idempotent through ``Idempotency-Key``: the point's key ``(rider, recorded_at)`` already makes a
    replayed batch store nothing twice (``accepted: 0``)."""

    permission_classes = [IsRider]
    error_statuses = (413, 422)

    class Input(serializers.Serializer):
        points = PointList()

    @extend_schema(
        request=Input,
        responses={202: LocationBatchOut},
        summary="Upload a batch of GPS points (at most 500; on duty only)",
        description="Every point is checked on its own: the valid ones are stored in one statement, the invalid "
        "ones are listed in `rejected` by index with the first problem found (`code`, `field`). A point whose "
        "`recorded_at` is already stored counts as a duplicate, so a replayed batch answers `accepted: 0`. "
        "More than 500 points is a 413 `batch_too_large` (nothing stored); a rider not ON duty gets a 422 "
        "`not_on_duty`; an empty or missing `points` list is a 400.",
        examples=[
            OpenApiExample(
                "Two valid points, one in the future",
                response_only=True,
                status_codes=["202"],
                value={
                    "accepted": 2,
                    "duplicates": 0,
                    "rejected": [{"index": 2, "code": "in_future", "field": "recorded_at"}],
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        result = services.location_batch_ingest(
            rider=current_rider(request), points_raw=data["points"], now=timezone.now()
        )
        metrics.POINTS_INGESTED.inc(result.accepted)
        # Built by hand rather than by LocationBatchOut (which documents it): a batch may reject 500 points.
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [asdict(rejected) for rejected in result.rejected],
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class RidersNearbyApi(ApiView):
    permission_classes = [IsStaff]
    error_statuses = (400,)

    class Input(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90)
        lon = serializers.FloatField(min_value=-180, max_value=180)
        radius_km = serializers.FloatField(min_value=0, max_value=NEARBY_MAX_RADIUS_KM, default=5.0)
        city = serializers.CharField(max_length=16, help_text="City code, e.g. BLR. An unknown city is a 400.")
        limit = serializers.IntegerField(min_value=1, max_value=100, default=20)

        def validate_city(self, value: str) -> str:
            city = selectors.city_active(code=value)
            if city is None:
                raise serializers.ValidationError("No active city has this code.")
            return city.code

    @extend_schema(
        parameters=[Input],
        responses={200: NearbyRiderOut(many=True)},
        summary="On-duty riders nearest a point, from the live map (staff and partners)",
        description="Nearest first, within `radius_km` (at most 50) of the point, at most `limit`. Riders whose "
        "last position expired or who went off duty are left out.",
    )
    def get(self, request: Request) -> Response:
        params = validated_query(self.Input, request)
        nearby = selectors.riders_nearby(
            city_code=params["city"],
            lat=params["lat"],
            lon=params["lon"],
            radius_km=params["radius_km"],
            limit=params["limit"],
        )
        return Response(NearbyRiderOut(nearby, many=True).data)
