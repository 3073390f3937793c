"""Riders: who rides, their KYC, duty, ratings, support tickets and SOS alerts."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

E164 = r"^\+[1-9][0-9]{7,14}$"
mobile_validator = RegexValidator(E164, "Enter the mobile number in E.164 form, e.g. +919812345678.")


class RiderStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    OFFBOARDED = "OFFBOARDED", "Offboarded"


class KycStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"


class DutyStatus(models.TextChoices):
    ON = "ON", "On duty"
    OFF = "OFF", "Off duty"
    AUTO_OFF = "AUTO_OFF", "Auto off (silent or over hours)"


class Rider(models.Model):
    """A person who delivers for the fleet, and the login they use in the app."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rider")
    mobile = models.CharField(max_length=16, unique=True, validators=[mobile_validator])
    name = models.CharField(max_length=120)
    city = models.ForeignKey("fleet.City", on_delete=models.PROTECT, related_name="riders")
    status = models.CharField(max_length=12, choices=RiderStatus.choices, default=RiderStatus.ACTIVE)
    kyc_status = models.CharField("KYC status", max_length=10, choices=KycStatus.choices, default=KycStatus.PENDING)
    kyc_reviewed_at = models.DateTimeField("KYC reviewed at", null=True, blank=True)
    kyc_rejection_reason = models.CharField("KYC rejection reason", max_length=255, blank=True)
    duty_status = models.CharField(max_length=10, choices=DutyStatus.choices, default=DutyStatus.OFF)
    duty_changed_at = models.DateTimeField(null=True, blank=True)
    vehicle = models.ForeignKey(
        "fleet.Vehicle", on_delete=models.SET_NULL, null=True, blank=True, related_name="riders"
    )
    language = models.CharField(max_length=8, default="en")
    emergency_contact_name = models.CharField(max_length=120, blank=True)
    emergency_contact_mobile = models.CharField(max_length=16, blank=True, validators=[mobile_validator])
    suspension_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(mobile__regex=E164), name="rider_mobile_e164"),
            models.CheckConstraint(
                condition=Q(emergency_contact_mobile="") | Q(emergency_contact_mobile__regex=E164),
                name="rider_emergency_mobile_e164",
            ),
            models.CheckConstraint(condition=Q(status__in=RiderStatus.values), name="rider_status_valid"),
            models.CheckConstraint(condition=Q(kyc_status__in=KycStatus.values), name="rider_kyc_status_valid"),
            models.CheckConstraint(condition=Q(duty_status__in=DutyStatus.values), name="rider_duty_status_valid"),
            models.CheckConstraint(
                condition=~Q(kyc_status=KycStatus.REJECTED) | ~Q(kyc_rejection_reason=""),
                name="rider_kyc_rejection_has_reason",
            ),
            # Only an active, KYC-approved rider can be on duty.
            models.CheckConstraint(
                condition=~Q(duty_status=DutyStatus.ON) | Q(status=RiderStatus.ACTIVE, kyc_status=KycStatus.APPROVED),
                name="rider_on_duty_is_active_and_approved",
            ),
        ]
        indexes = [
            # Dispatch and the dashboard ask "active riders of this city by duty status".
            models.Index(
                fields=["city", "duty_status"], name="rider_active_city_duty_idx", condition=Q(status="ACTIVE")
            ),
            # The KYC review queue.
            models.Index(fields=["created_at"], name="rider_kyc_pending_idx", condition=Q(kyc_status="PENDING")),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mobile})"


class KycDocumentType(models.TextChoices):
    PAN = "PAN", "PAN card"
    AADHAAR = "AADHAAR", "Aadhaar"
    DL = "DL", "Driving licence"
    RC = "RC", "Vehicle registration (RC)"
    SELFIE = "SELFIE", "Selfie"
    PROOF = "PROOF", "Address proof"


class ReviewStatus(models.TextChoices):
    PENDING = "PENDING", "Pending review"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"


def kyc_upload_to(instance: KycDocument, filename: str) -> str:
    """An unguessable path per file; the rider's own file name is kept only as the extension."""
    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"kyc/{instance.rider_id}/{uuid.uuid4().hex}{suffix}"


class KycDocument(models.Model):
    """A KYC document a rider uploaded, stored privately, and the review it got."""

    rider = models.ForeignKey(Rider, on_delete=models.CASCADE, related_name="kyc_documents")
    doc_type = models.CharField(max_length=8, choices=KycDocumentType.choices)
    number = models.CharField(max_length=32, blank=True, help_text="Document number, where it has one.")
    file = models.FileField(upload_to=kyc_upload_to, max_length=255)
    content_type = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=255, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rider", "doc_type", "-uploaded_at"]
        verbose_name = "KYC document"
        constraints = [
            models.CheckConstraint(condition=Q(doc_type__in=KycDocumentType.values), name="kyc_doc_type_valid"),
            models.CheckConstraint(condition=Q(status__in=ReviewStatus.values), name="kyc_doc_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=ReviewStatus.REJECTED) | ~Q(rejection_reason=""),
                name="kyc_doc_rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(status=ReviewStatus.PENDING) | Q(reviewed_at__isnull=False),
                name="kyc_doc_reviewed_has_time",
            ),
            # A rider re-uploads after a rejection, but has one live document of each type.
            models.UniqueConstraint(
                fields=["rider", "doc_type"],
                condition=Q(status__in=["PENDING", "APPROVED"]),
                name="kyc_doc_one_live_per_type",
            ),
        ]
        indexes = [
            models.Index(fields=["uploaded_at"], name="kyc_doc_pending_idx", condition=Q(status="PENDING")),
        ]

    def __str__(self) -> str:
        return f"{self.get_doc_type_display()} of rider {self.rider_id}"


class DutyEndReason(models.TextChoices):
    MANUAL = "MANUAL", "Went off duty"
    STALE = "STALE", "Auto off: no GPS"
    HOURS = "HOURS", "Auto off: hours of service"
    SUSPENDED = "SUSPENDED", "Rider suspended"


class DutyLog(models.Model):
    """One stretch on duty, from going on duty to going off; hours of service sum these."""

    rider = models.ForeignKey(Rider, on_delete=models.CASCADE, related_name="duty_logs")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=10, choices=DutyEndReason.choices, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="duty_log_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True, end_reason="")
                | Q(ended_at__isnull=False, end_reason__in=DutyEndReason.values),
                name="duty_log_end_reason_iff_ended",
            ),
            models.UniqueConstraint(
                fields=["rider"], condition=Q(ended_at__isnull=True), name="duty_log_one_open_per_rider"
            ),
        ]
        indexes = [models.Index(fields=["rider", "-started_at"], name="duty_log_rider_started_idx")]

    def __str__(self) -> str:
        return f"rider {self.rider_id} on duty from {self.started_at:%Y-%m-%d %H:%M}"


class Rating(models.Model):
    """A partner's or customer's rating of a rider for one delivered order."""

    rider = models.ForeignKey(Rider, on_delete=models.CASCADE, related_name="ratings")
    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="rating")
    stars = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, max_length=1000)
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="rating_stars_1_to_5"),
        ]
        indexes = [models.Index(fields=["rider", "-created_at"], name="rating_rider_created_idx")]

    def __str__(self) -> str:
        return f"{self.stars}★ for rider {self.rider_id} on order {self.order_id}"


class TicketCategory(models.TextChoices):
    PAYMENT = "PAYMENT", "Payment"
    ORDER = "ORDER", "Order"
    VEHICLE = "VEHICLE", "Vehicle"
    APP = "APP", "App"
    ACCIDENT = "ACCIDENT", "Accident"
    OTHER = "OTHER", "Other"


class TicketStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    RESOLVED = "RESOLVED", "Resolved"
    CLOSED = "CLOSED", "Closed"


class TicketPriority(models.TextChoices):
    LOW = "LOW", "Low"
    NORMAL = "NORMAL", "Normal"
    HIGH = "HIGH", "High"
    URGENT = "URGENT", "Urgent"


class SupportTicket(models.Model):
    """A rider's request for help, worked by ops staff."""

    rider = models.ForeignKey(Rider, on_delete=models.CASCADE, related_name="support_tickets")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="support_tickets"
    )
    category = models.CharField(max_length=10, choices=TicketCategory.choices)
    priority = models.CharField(max_length=8, choices=TicketPriority.choices, default=TicketPriority.NORMAL)
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    status = models.CharField(max_length=12, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(category__in=TicketCategory.values), name="ticket_category_valid"),
            models.CheckConstraint(condition=Q(priority__in=TicketPriority.values), name="ticket_priority_valid"),
            models.CheckConstraint(condition=Q(status__in=TicketStatus.values), name="ticket_status_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["OPEN", "IN_PROGRESS"]) | Q(resolved_at__isnull=False),
                name="ticket_resolved_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["priority", "created_at"],
                name="ticket_open_idx",
                condition=Q(status__in=["OPEN", "IN_PROGRESS"]),
            ),
            models.Index(fields=["rider", "-created_at"], name="ticket_rider_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class AlertStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    ACKNOWLEDGED = "ACKNOWLEDGED", "Acknowledged"
    RESOLVED = "RESOLVED", "Resolved"


class EmergencyAlert(models.Model):
    """An SOS a rider raised: an incident that stays open until a dispatcher acknowledges it."""

    rider = models.ForeignKey(Rider, on_delete=models.CASCADE, related_name="emergency_alerts")
    city = models.ForeignKey("fleet.City", on_delete=models.PROTECT, related_name="emergency_alerts")
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    raised_at = models.DateTimeField(auto_now_add=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=AlertStatus.values), name="alert_status_valid"),
            models.CheckConstraint(
                condition=Q(lat__isnull=True, lon__isnull=True)
                | Q(lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180),
                name="alert_position_in_range",
            ),
            models.CheckConstraint(
                condition=Q(status=AlertStatus.OPEN) | Q(acknowledged_at__isnull=False),
                name="alert_acknowledged_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["city", "raised_at"], name="alert_open_city_idx", condition=Q(status="OPEN")),
        ]

    def __str__(self) -> str:
        return f"SOS #{self.pk} from rider {self.rider_id}"
