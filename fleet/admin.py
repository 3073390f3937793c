from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin
from fleet.models import City, RiderDayDistance, Vehicle


@admin.register(City)
class CityAdmin(FleetModelAdmin):
    list_display = ["code", "name", "rider_count", "vehicle_count", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[City]:
        return (
            super()
            .get_queryset(request)
            .annotate(rider_count=Count("riders", distinct=True), vehicle_count=Count("vehicles", distinct=True))
        )

    @admin.display(description="Riders", ordering="rider_count")
    def rider_count(self, city: City) -> int:
        return city.rider_count  # type: ignore[attr-defined]

    @admin.display(description="Vehicles", ordering="vehicle_count")
    def vehicle_count(self, city: City) -> int:
        return city.vehicle_count  # type: ignore[attr-defined]


@admin.register(Vehicle)
class VehicleAdmin(FleetModelAdmin):
    list_display = ["registration", "kind", "city", "order_capacity", "load_capacity_kg", "is_active"]
    list_filter = ["kind", "city", "is_active"]
    search_fields = ["registration"]
    list_select_related = ["city"]
    autocomplete_fields = ["city"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"


@admin.register(RiderDayDistance)
class RiderDayDistanceAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    """Computed from the location log by ``fleet.rider_distances_compute``; a recompute would undo any edit."""

    list_display = ["rider", "day", "km", "points", "computed_at"]
    list_filter = ["rider__city"]
    search_fields = ["rider__name", "rider__mobile"]
    list_select_related = ["rider"]
    date_hierarchy = "day"
    ordering = ["-day", "-distance_m"]

    @admin.display(description="km", ordering="distance_m")
    def km(self, row: RiderDayDistance) -> str:
        return f"{row.distance_km:.1f}"
