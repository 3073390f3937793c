from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin
from config.money import format_minor
from orders.models import Order, OrderEvent


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    fields = ("occurred_at", "from_status", "to_status", "rider", "actor", "lat", "lon", "note")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("rider", "actor")


@admin.register(Order)
class OrderAdmin(FleetModelAdmin):
    list_display = ["external_ref", "city", "status", "rider", "delivery_fee", "cod_amount", "is_flagged", "created_at"]
    list_filter = ["status", "city", "is_flagged"]
    search_fields = ["external_ref", "rider__mobile", "rider__name"]
    list_select_related = ["city", "rider"]
    date_hierarchy = "created_at"
    raw_id_fields = ["rider", "created_by"]
    autocomplete_fields = ["city"]
    inlines = [OrderEventInline]
    # The state machine owns status, rider and the timestamps: admin shows them, services change them.
    readonly_fields = [
        "status",
        "rider",
        "tracking_token",
        "created_by",
        "created_at",
        "updated_at",
        "assigned_at",
        "picked_up_at",
        "delivered_at",
        "distance_m",
    ]

    @admin.display(description="Delivery fee", ordering="delivery_fee_paise")
    def delivery_fee(self, order: Order) -> str:
        return format_minor(order.delivery_fee_paise)

    @admin.display(description="COD", ordering="cod_amount_paise")
    def cod_amount(self, order: Order) -> str:
        return format_minor(order.cod_amount_paise)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    list_display = ["order", "from_status", "to_status", "rider", "actor", "occurred_at"]
    list_filter = ["to_status"]
    search_fields = ["order__external_ref", "rider__mobile"]
    list_select_related = ["order", "rider", "actor"]
    date_hierarchy = "occurred_at"
