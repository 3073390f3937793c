"""Serializers of the fleet API: the GPS batch's documented shape, its answer, and the nearby riders."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from fleet.services import MAX_POINTS_PER_BATCH, PointField, RejectCode


class LocationPointIn(serializers.Serializer):
    """One GPS fix. Documents the contract; ``fleet.services.location_batch_ingest`` checks it (fast, per index)."""

    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    recorded_at = serializers.DateTimeField(
        help_text="ISO-8601 with a time zone (Z or an offset); at most 2 minutes ahead of the server's clock and "
        "not older than the retention window (LOCATION_RETENTION_MONTHS). The natural key of the point: "
        "a second point with the same time is a duplicate."
    )
    speed = serializers.FloatField(min_value=0, required=False, allow_null=True, help_text="km/h.")
    heading = serializers.FloatField(
        min_value=0,
        max_value=360,
        required=False,
        allow_null=True,
        help_text="Degrees clockwise from north, 0 ≤ heading < 360; stored rounded to whole degrees.",
    )
    accuracy = serializers.FloatField(min_value=0, required=False, allow_null=True, help_text="Metres.")
    battery = serializers.FloatField(
        min_value=0, max_value=100, required=False, allow_null=True, help_text="Percent; stored rounded."
    )


class PointList(serializers.ListField):
    """The batch's ``points``: a non-empty JSON list, passed on as it came.

    Each point is checked by the service, not by a serializer per point (the hot path: 500 points), and is
    refused on its own, by index. The count limit is the service's too (a 413, not a 400); it is only
    documented here as ``maxItems``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=LocationPointIn(), min_length=1, **kwargs)
        self.max_length = MAX_POINTS_PER_BATCH  # documentation only: no validator, see the docstring

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return data


class RejectedPointOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the point in the batch, from 0.")
    code = serializers.ChoiceField(choices=RejectCode.choices, help_text="The point's first problem.")
    field = serializers.ChoiceField(
        choices=PointField.choices, allow_null=True, help_text="The field at fault; null when the point is no object."
    )


class LocationBatchOut(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Points stored now.")
    duplicates = serializers.IntegerField(help_text="Valid points already stored (same recorded_at): skipped.")
    rejected = RejectedPointOut(many=True, help_text="Invalid points, not stored.")


class NearbyRiderOut(serializers.Serializer):
    rider_id = serializers.IntegerField()
    name = serializers.CharField()
    distance_km = serializers.FloatField(help_text="From the asked point, to the metre.")
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    recorded_at = serializers.DateTimeField(help_text="When the phone recorded this position.")
    last_seen_s = serializers.IntegerField(help_text="Seconds since recorded_at.")
