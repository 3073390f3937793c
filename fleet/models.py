"""Fleet: cities, vehicles and the GPS location log."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


class City(models.Model):
    """A city the fleet operates in; orders and riders belong to exactly one."""

    code = models.SlugField(max_length=16, unique=True, help_text="Short code used by partners, e.g. BLR.")
    name = models.CharField(max_length=100)
    center_lat = models.FloatField()
    center_lon = models.FloatField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "cities"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(center_lat__gte=-90, center_lat__lte=90, center_lon__gte=-180, center_lon__lte=180),
                name="city_center_in_range",
            ),
            models.CheckConstraint(condition=Q(code=Upper("code")), name="city_code_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class VehicleKind(models.TextChoices):
    BIKE = "BIKE", "Bike"
    EV = "EV", "Electric vehicle"
    TRUCK = "TRUCK", "Truck"


class Vehicle(models.Model):
    """A vehicle of the fleet; a rider rides at most one at a time."""

    kind = models.CharField(max_length=8, choices=VehicleKind.choices)
    registration = models.CharField(max_length=16, unique=True, help_text="Registration plate, upper case.")
    city = models.ForeignKey(City, on_delete=models.PROTECT, related_name="vehicles")
    order_capacity = models.PositiveSmallIntegerField(
        default=1, help_text="How many active orders a rider on this vehicle may carry at once."
    )
    load_capacity_kg = models.PositiveIntegerField(default=20)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["registration"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=VehicleKind.values), name="vehicle_kind_valid"),
            models.CheckConstraint(condition=Q(order_capacity__gte=1), name="vehicle_order_capacity_positive"),
            models.CheckConstraint(condition=Q(registration=Upper("registration")), name="vehicle_registration_upper"),
        ]
        indexes = [models.Index(fields=["city", "kind"], name="vehicle_city_kind_idx")]

    def __str__(self) -> str:
        return f"{self.registration} ({self.get_kind_display()})"


class LocationLog(models.Model):
    """One GPS point of a rider.

    The table is range-partitioned by month on ``recorded_at`` (``fleet/sql/0002_locationlog.sql``, ``0003_*``);
    the primary key ``(rider_id, recorded_at)`` makes a replayed point a duplicate, never a second row.
    Ops read it through a rider's track view, not an admin changelist.
    """

    pk = models.CompositePrimaryKey("rider", "recorded_at")
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    lat = models.FloatField()
    lon = models.FloatField()
    speed_kmh = models.FloatField(null=True, blank=True)
    heading_deg = models.SmallIntegerField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    battery_pct = models.SmallIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "fleet_locationlog"
        # Built partition by partition without blocking writes (migration 0005); time ranges over every rider.
        indexes = [BrinIndex(fields=["recorded_at"], name="locationlog_recorded_brin")]
        constraints = [
            models.CheckConstraint(
                condition=Q(lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180), name="location_in_range"
            ),
            models.CheckConstraint(
                condition=Q(heading_deg__isnull=True) | Q(heading_deg__gte=0, heading_deg__lt=360),
                name="location_heading_in_range",
            ),
            models.CheckConstraint(
                condition=Q(battery_pct__isnull=True) | Q(battery_pct__gte=0, battery_pct__lte=100),
                name="location_battery_in_range",
            ),
            models.CheckConstraint(
                condition=Q(speed_kmh__isnull=True) | Q(speed_kmh__gte=0), name="location_speed_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"rider {self.rider_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}: {self.lat:.5f},{self.lon:.5f}"


class RiderDayDistance(models.Model):
    """How far a rider travelled on one day, computed from the location log (``fleet.distance``).

    ``day`` is the portal's local day (``settings.TIME_ZONE``), not the UTC one. The row is derived data:
    ``fleet.rider_distances_compute`` recomputes today's and yesterday's rows every 15 minutes, and a
    recompute overwrites the row (``ON CONFLICT (rider_id, day) DO UPDATE``), so nobody edits it.
    """

    # No index of its own: the unique (rider, day) constraint's index starts with the rider.
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField(help_text="The portal's local day (settings.TIME_ZONE).")
    distance_m = models.IntegerField(
        help_text="Metres between consecutive GPS points of the day (haversine), rounded; "
        "segments faster than 200 km/h are GPS glitches and left out."
    )
    points = models.IntegerField(help_text="GPS points of the rider on that day.")
    computed_at = models.DateTimeField(help_text="When the job last computed this row.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rider", "day"], name="rider_day_distance_unique"),
            models.CheckConstraint(condition=Q(distance_m__gte=0), name="rider_day_distance_non_negative"),
            models.CheckConstraint(condition=Q(points__gte=0), name="rider_day_distance_points_non_negative"),
        ]
        # "Distance today" sums one day over every rider.
        indexes = [models.Index(fields=["day"], name="rider_day_distance_day_idx")]

    def __str__(self) -> str:
        return f"rider {self.rider_id} on {self.day}: {self.distance_km:.1f} km"

    @property
    def distance_km(self) -> float:
        return self.distance_m / 1000
