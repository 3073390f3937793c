from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin, reason_action
from fleet.selectors import rider_track_recent
from riders import services
from riders.models import DutyLog, EmergencyAlert, KycDocument, Rating, Rider, SupportTicket


def _kyc_file_link(document: KycDocument) -> str:
    if not document.pk or not document.file:
        return "—"
    url = reverse("admin:riders_kycdocument_file", args=[document.pk])
    return format_html('<a href="{}" target="_blank" rel="noopener">open file</a>', url)


class KycDocumentInline(admin.TabularInline):
    model = KycDocument
    extra = 0
    fields = (
        "doc_type",
        "number",
        "file_link",
        "status",
        "reviewed_by",
        "reviewed_at",
        "rejection_reason",
        "uploaded_at",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[KycDocument]:
        return super().get_queryset(request).select_related("reviewed_by")

    @admin.display(description="File")
    def file_link(self, document: KycDocument) -> str:
        return _kyc_file_link(document)


def _approve(request: HttpRequest, queryset: QuerySet[Rider]) -> int:
    return services.rider_kyc_approve(rider_ids=queryset.values_list("pk", flat=True), reviewer=request.user)


@admin.register(Rider)
class RiderAdmin(FleetModelAdmin):
    list_display = ["name", "mobile", "city", "status", "kyc_status", "duty_status", "vehicle", "created_at"]
    list_filter = ["city", "status", "kyc_status", "duty_status", "vehicle__kind"]
    search_fields = ["mobile", "name"]
    list_select_related = ["city", "vehicle"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user"]
    autocomplete_fields = ["city", "vehicle"]
    inlines = [KycDocumentInline]
    readonly_fields = [
        "kyc_status",
        "kyc_reviewed_at",
        "kyc_rejection_reason",
        "duty_status",
        "duty_changed_at",
        "suspension_reason",
        "recent_track",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["user", "name", "mobile", "city", "vehicle", "status", "suspension_reason", "language"]}),
        ("KYC", {"fields": ["kyc_status", "kyc_reviewed_at", "kyc_rejection_reason"]}),
        ("Duty", {"fields": ["duty_status", "duty_changed_at", "recent_track"]}),
        ("Emergency contact", {"fields": ["emergency_contact_name", "emergency_contact_mobile"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["approve_kyc", "reject_kyc", "suspend_riders", "export_selected_csv"]

    @admin.display(description="Recent track")
    def recent_track(self, rider: Rider) -> str:
        if not rider.pk:
            return "—"
        url = reverse("admin:riders_rider_track", args=[rider.pk])
        return format_html('<a href="{}">GPS track of the last 24 hours</a>', url)

    @admin.action(description="Approve KYC of selected riders", permissions=["change"])
    def approve_kyc(self, request: HttpRequest, queryset: QuerySet[Rider]) -> None:
        count = _approve(request, queryset)
        self.message_user(request, f"Approved the KYC of {count} rider(s).", messages.SUCCESS)

    reject_kyc = admin.action(description="Reject KYC of selected riders (with reason)", permissions=["change"])(
        reason_action(
            title="Reject KYC",
            perform=lambda request, qs, reason: services.rider_kyc_reject(
                rider_ids=qs.values_list("pk", flat=True), reviewer=request.user, reason=reason
            ),
            done="Rejected the KYC of {count} rider(s).",
        )
    )

    suspend_riders = admin.action(description="Suspend selected riders (with reason)", permissions=["change"])(
        reason_action(
            title="Suspend riders",
            perform=lambda request, qs, reason: services.rider_suspend(
                rider_ids=qs.values_list("pk", flat=True), actor=request.user, reason=reason
            ),
            done="Suspended {count} rider(s).",
        )
    )

    def get_urls(self) -> list[URLPattern]:
        track = path("<int:rider_id>/track/", self.admin_site.admin_view(self.track_view), name="riders_rider_track")
        return [track, *super().get_urls()]

    def track_view(self, request: HttpRequest, rider_id: int) -> HttpResponse:
        rider = get_object_or_404(Rider.objects.select_related("city"), pk=rider_id)
        if not self.has_view_permission(request, rider):
            raise Http404
        points = list(rider_track_recent(rider_id=rider.pk))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Recent track of {rider}",
            "opts": self.model._meta,
            "rider": rider,
            "points": points,
            "polyline": _svg_polyline(points),
        }
        return TemplateResponse(request, "admin/riders/rider_track.html", context)


def _svg_polyline(points: list[Any], size: int = 400) -> str:
    """The track as SVG polyline coordinates scaled into a square, oldest point first."""
    if len(points) < 2:
        return ""
    min_lat, min_lon = min(p.lat for p in points), min(p.lon for p in points)
    span = max(max(p.lat for p in points) - min_lat, max(p.lon for p in points) - min_lon) or 1e-6
    scale = (size - 20) / span

    def xy(point: Any) -> str:
        return f"{(point.lon - min_lon) * scale + 10:.1f},{size - 10 - (point.lat - min_lat) * scale:.1f}"

    return " ".join(xy(p) for p in reversed(points))


@admin.register(KycDocument)
class KycDocumentAdmin(FleetModelAdmin):
    list_display = ["rider", "doc_type", "status", "uploaded_at", "reviewed_by", "reviewed_at"]
    list_filter = ["status", "doc_type", "rider__city"]
    search_fields = ["rider__mobile", "rider__name", "number"]
    list_select_related = ["rider", "reviewed_by"]
    date_hierarchy = "uploaded_at"
    raw_id_fields = ["rider"]
    fields = (
        "rider",
        "doc_type",
        "number",
        "file_link",
        "content_type",
        "size_bytes",
        "status",
        "reviewed_by",
        "reviewed_at",
        "rejection_reason",
        "uploaded_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # riders upload from the app; ops review

    @admin.display(description="File")
    def file_link(self, document: KycDocument) -> str:
        return _kyc_file_link(document)

    def get_urls(self) -> list[URLPattern]:
        file_view = path(
            "<int:document_id>/file/", self.admin_site.admin_view(self.file_view), name="riders_kycdocument_file"
        )
        return [file_view, *super().get_urls()]

    def file_view(self, request: HttpRequest, document_id: int) -> FileResponse:
        """Streams a private KYC file to staff allowed to view KYC documents; never a public URL."""
        document = get_object_or_404(KycDocument, pk=document_id)
        if not self.has_view_permission(request, document) or not document.file:
            raise Http404
        response = FileResponse(document.file.open("rb"), content_type=document.content_type or None)
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


@admin.register(DutyLog)
class DutyLogAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    list_display = ["rider", "started_at", "ended_at", "end_reason"]
    list_filter = ["end_reason", "rider__city"]
    search_fields = ["rider__mobile", "rider__name"]
    list_select_related = ["rider"]
    date_hierarchy = "started_at"


@admin.register(Rating)
class RatingAdmin(FleetModelAdmin):
    list_display = ["order", "rider", "stars", "rated_by", "created_at"]
    list_filter = ["stars", "rider__city"]
    search_fields = ["rider__mobile", "rider__name", "order__external_ref"]
    list_select_related = ["order", "rider", "rated_by"]
    date_hierarchy = "created_at"
    raw_id_fields = ["order", "rider", "rated_by"]


@admin.register(SupportTicket)
class SupportTicketAdmin(FleetModelAdmin):
    list_display = ["id", "subject", "rider", "category", "priority", "status", "assigned_to", "created_at"]
    list_filter = ["status", "priority", "category", "rider__city"]
    search_fields = ["subject", "rider__mobile", "rider__name", "order__external_ref"]
    list_select_related = ["rider", "assigned_to"]
    date_hierarchy = "created_at"
    raw_id_fields = ["rider", "order", "assigned_to"]
    readonly_fields = ["created_at", "updated_at", "resolved_at"]


@admin.register(EmergencyAlert)
class EmergencyAlertAdmin(FleetModelAdmin):
    list_display = ["id", "rider", "city", "status", "raised_at", "escalated_at", "acknowledged_by", "acknowledged_at"]
    list_filter = ["status", "city"]
    search_fields = ["rider__mobile", "rider__name"]
    list_select_related = ["rider", "city", "acknowledged_by"]
    date_hierarchy = "raised_at"
    raw_id_fields = ["rider", "acknowledged_by"]
    readonly_fields = ["raised_at", "escalated_at", "acknowledged_by", "acknowledged_at", "resolved_at"]
