from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin
from config.errors import DomainError
from config.money import format_minor
from orders.assignment import order_assign
from orders.models import Order, OrderEvent, OrderOffer

#: What a proof photo is, judged by its first bytes when it is served (never by the name it was uploaded with).
_IMAGE_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
#: The orders the reassign action names in its messages; beyond them it only counts.
_LISTED = 10


def _image_type(head: bytes) -> str:
    for magic, content_type in _IMAGE_SIGNATURES:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _listed(lines: list[str]) -> str:
    more = len(lines) - _LISTED
    return "; ".join(lines[:_LISTED]) + (f" and {more} more" if more > 0 else "")


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


class OrderOfferInline(admin.TabularInline):
    """Every rider the order was offered to and what came of it; dispatch writes these, nobody edits them."""

    model = OrderOffer
    extra = 0
    fields = ("offered_at", "rider", "status", "distance_m", "offered_by", "expires_at", "answered_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderOffer]:
        return super().get_queryset(request).select_related("rider", "offered_by")


@admin.register(Order)
class OrderAdmin(FleetModelAdmin):
    list_display = ["external_ref", "city", "status", "rider", "delivery_fee", "cod_amount", "is_flagged", "created_at"]
    list_filter = ["status", "city", "is_flagged", "created_at"]
    search_fields = ["external_ref", "rider__mobile", "rider__name"]
    list_select_related = ["city", "rider"]
    date_hierarchy = "created_at"
    raw_id_fields = ["rider", "created_by"]
    autocomplete_fields = ["city"]
    inlines = [OrderEventInline, OrderOfferInline]
    actions = ["reassign_automatically", "export_selected_csv"]
    # The photo is private: its storage has no URL, so it is shown as a link to the staff view below.
    exclude = ["proof_photo"]
    # The state machine owns status, rider, the timestamps and the proof: admin shows them, services change them.
    readonly_fields = [
        "status",
        "rider",
        "tracking_token",
        "created_by",
        "created_at",
        "updated_at",
        "assigned_at",
        "accepted_at",
        "picked_up_at",
        "delivered_at",
        "closed_at",
        "offer_attempts",
        "intake_hash",
        "cancel_reason",
        "failure_reason",
        "proof_method",
        "proof_photo_link",
        "distance_m",
    ]

    @admin.display(description="Delivery fee", ordering="delivery_fee_paise")
    def delivery_fee(self, order: Order) -> str:
        return format_minor(order.delivery_fee_paise)

    @admin.display(description="COD", ordering="cod_amount_paise")
    def cod_amount(self, order: Order) -> str:
        return format_minor(order.cod_amount_paise)

    @admin.display(description="Proof photo")
    def proof_photo_link(self, order: Order) -> str:
        if not order.pk or not order.proof_photo:
            return "—"
        url = reverse("admin:orders_order_proof_photo", args=[order.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">open photo</a>', url)

    @admin.action(description="Reassign automatically (nearest available rider)", permissions=["change"])
    def reassign_automatically(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """Offers each selected order to the nearest available rider, one order at a time (each its own
        transaction): one that cannot be assigned is reported and does not stop the others."""
        assigned: list[str] = []
        failed: list[str] = []
        for order_id, external_ref in queryset.order_by("pk").values_list("pk", "external_ref"):
            try:
                result = order_assign(order_id=order_id, actor=request.user, rider_id=None)
            except DomainError as exc:
                failed.append(f"{external_ref}: {exc.message}")
                continue
            assigned.append(f"{external_ref} → {result.order.rider}")
        if assigned:
            self.message_user(request, f"Offered {len(assigned)} order(s): {_listed(assigned)}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Not assigned, {len(failed)} order(s): {_listed(failed)}.", messages.ERROR)

    def get_urls(self) -> list[URLPattern]:
        proof = path(
            "<int:order_id>/proof-photo/",
            self.admin_site.admin_view(self.proof_photo_view),
            name="orders_order_proof_photo",
        )
        return [proof, *super().get_urls()]

    def proof_photo_view(self, request: HttpRequest, order_id: int) -> FileResponse:
        """Streams an order's private proof-of-delivery photo to staff allowed to view orders; never a URL."""
        order = get_object_or_404(Order, pk=order_id)
        if not self.has_view_permission(request, order) or not order.proof_photo:
            raise Http404
        photo = order.proof_photo.open("rb")
        content_type = _image_type(photo.read(16))
        photo.seek(0)
        response = FileResponse(photo, content_type=content_type)
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    list_display = ["order", "from_status", "to_status", "rider", "actor", "occurred_at"]
    list_filter = ["to_status"]
    search_fields = ["order__external_ref", "rider__mobile"]
    list_select_related = ["order", "rider", "actor"]
    date_hierarchy = "occurred_at"
