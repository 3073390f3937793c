"""Orders: what partners push, who carries it, and every step it took."""

from __future__ import annotations

import secrets
import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q


class OrderStatus(models.TextChoices):
    CREATED = "CREATED", "Created"
    ASSIGNED = "ASSIGNED", "Assigned"
    ACCEPTED = "ACCEPTED", "Accepted"
    PICKED_UP = "PICKED_UP", "Picked up"
    DELIVERED = "DELIVERED", "Delivered"
    CANCELLED = "CANCELLED", "Cancelled"
    FAILED = "FAILED", "Failed"


ACTIVE_STATUSES = (OrderStatus.ASSIGNED, OrderStatus.ACCEPTED, OrderStatus.PICKED_UP)
WITH_RIDER_STATUSES = (*ACTIVE_STATUSES, OrderStatus.DELIVERED, OrderStatus.FAILED)
FINAL_STATUSES = (OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.FAILED)


def new_delivery_otp() -> str:
    return f"{secrets.randbelow(10_000):04d}"


def new_tracking_token() -> str:
    return secrets.token_urlsafe(24)


class ProofMethod(models.TextChoices):
    PHOTO = "PHOTO", "Photo"
    OTP = "OTP", "Delivery OTP"


def proof_upload_to(instance: Order, filename: str) -> str:
    """An unguessable path per file (stored privately, like KYC documents); only the extension is kept."""
    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"proof/{instance.pk}/{uuid.uuid4().hex}{suffix}"


class Order(models.Model):
    """A delivery from pickup to drop, pushed by a partner and carried by one rider."""

    external_ref = models.CharField(max_length=64, unique=True, help_text="The partner's own order reference.")
    city = models.ForeignKey("fleet.City", on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.CREATED)
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pickup_lat = models.FloatField()
    pickup_lon = models.FloatField()
    pickup_address = models.CharField(max_length=500)
    drop_lat = models.FloatField()
    drop_lon = models.FloatField()
    drop_address = models.CharField(max_length=500)
    delivery_fee_paise = models.BigIntegerField(default=0)
    cod_amount_paise = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    delivery_otp = models.CharField(max_length=6, default=new_delivery_otp)
    tracking_token = models.CharField(max_length=48, unique=True, default=new_tracking_token)
    is_flagged = models.BooleanField(default=False, help_text="Needs a dispatcher: no rider found in time.")
    offer_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Offers riders rejected or let expire; at ORDER_MAX_OFFERS the order is flagged."
    )
    intake_hash = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the partner's request: the same ref with another body is a 409.",
    )
    cancel_reason = models.CharField(max_length=255, blank=True)
    failure_reason = models.CharField(max_length=64, blank=True)
    distance_m = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When it was cancelled or failed.")
    proof_photo = models.FileField(upload_to=proof_upload_to, max_length=255, blank=True)
    proof_method = models.CharField(max_length=8, choices=ProofMethod.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(
                condition=Q(
                    pickup_lat__gte=-90,
                    pickup_lat__lte=90,
                    pickup_lon__gte=-180,
                    pickup_lon__lte=180,
                    drop_lat__gte=-90,
                    drop_lat__lte=90,
                    drop_lon__gte=-180,
                    drop_lon__lte=180,
                ),
                name="order_coordinates_in_range",
            ),
            models.CheckConstraint(
                condition=Q(delivery_fee_paise__gte=0, cod_amount_paise__gte=0), name="order_amounts_non_negative"
            ),
            # A rider carries the order from assignment on; before that (or cancelled before it) there is none.
            models.CheckConstraint(
                condition=~Q(status__in=WITH_RIDER_STATUSES) | Q(rider__isnull=False),
                name="order_rider_when_assigned",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.CREATED) | Q(rider__isnull=True), name="order_no_rider_when_created"
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.DELIVERED) | Q(delivered_at__isnull=False),
                name="order_delivered_has_time",
            ),
        ]
        indexes = [
            # The rider's active orders (driver app, capacity check during assignment).
            models.Index(
                fields=["rider", "status"], name="order_rider_active_idx", condition=Q(status__in=ACTIVE_STATUSES)
            ),
            models.Index(fields=["rider", "-created_at"], name="order_rider_created_idx"),
            # Dispatch: unassigned orders of a city, oldest first.
            models.Index(
                fields=["city", "created_at"], name="order_unassigned_city_idx", condition=Q(status="CREATED")
            ),
            models.Index(fields=["city", "status", "-created_at"], name="order_city_status_created_idx"),
            GinIndex(fields=["metadata"], name="order_metadata_gin", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.external_ref} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class OrderEvent(models.Model):
    """One transition of an order, written in the same transaction as the transition."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=OrderStatus.choices)
    rider = models.ForeignKey(
        "riders.Rider", on_delete=models.PROTECT, null=True, blank=True, related_name="order_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "occurred_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(to_status__in=OrderStatus.values), name="order_event_to_valid"),
            models.CheckConstraint(
                condition=Q(from_status="") | Q(from_status__in=OrderStatus.values), name="order_event_from_valid"
            ),
            models.CheckConstraint(
                condition=Q(lat__isnull=True, lon__isnull=True)
                | Q(lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180),
                name="order_event_position_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["order", "occurred_at"], name="order_event_order_time_idx"),
            models.Index(fields=["occurred_at"], name="order_event_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '∅'} → {self.to_status}"


class OfferStatus(models.TextChoices):
    PENDING = "PENDING", "Waiting for the rider"
    ACCEPTED = "ACCEPTED", "Accepted"
    REJECTED = "REJECTED", "Rejected by the rider"
    EXPIRED = "EXPIRED", "Expired unanswered"
    WITHDRAWN = "WITHDRAWN", "Withdrawn (cancelled or reassigned)"


class OrderOffer(models.Model):
    """An order offered to one rider: the rider accepts it, rejects it, or lets it expire.

    A rider is offered an order at most once (a rejection or expiry is final for that pair), and an order
    has at most one offer waiting at a time: both held by the database.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="offers")
    rider = models.ForeignKey("riders.Rider", on_delete=models.PROTECT, related_name="order_offers")
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.PENDING)
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The dispatcher who picked the rider; empty for automatic assignment.",
    )
    distance_m = models.PositiveIntegerField(null=True, blank=True, help_text="Rider to pickup when offered.")
    offered_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "offered_at"]
        constraints = [
            models.UniqueConstraint(fields=["order", "rider"], name="order_offer_once_per_rider"),
            models.UniqueConstraint(fields=["order"], condition=Q(status="PENDING"), name="order_offer_one_pending"),
            models.CheckConstraint(condition=Q(status__in=OfferStatus.values), name="order_offer_status_valid"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("offered_at")), name="order_offer_expires_after"
            ),
        ]
        indexes = [
            # The expiry sweep: pending offers by deadline.
            models.Index(fields=["expires_at"], name="order_offer_pending_exp_idx", condition=Q(status="PENDING")),
            models.Index(fields=["rider", "status"], name="order_offer_rider_status_idx"),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} → rider {self.rider_id}: {self.status}"
