"""Rider writes: KYC review and suspension. Each is one transaction holding the riders' row locks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from config.errors import RuleViolation
from riders import locks
from riders.models import (
    DutyEndReason,
    DutyLog,
    DutyStatus,
    KycDocument,
    KycStatus,
    ReviewStatus,
    Rider,
    RiderStatus,
)

Actor = AbstractBaseUser | AnonymousUser


def _end_duty(rider: Rider, *, reason: str, at: datetime) -> None:
    """Takes a locked rider off duty and closes the open duty log (the caller saves the rider)."""
    rider.duty_status = DutyStatus.OFF
    rider.duty_changed_at = at
    DutyLog.objects.filter(rider=rider, ended_at__isnull=True).update(ended_at=at, end_reason=reason)


def _require_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise RuleViolation("A reason is required.", code="reason_required")
    return reason


@transaction.atomic(durable=True)
def rider_kyc_approve(*, rider_ids: Iterable[int], reviewer: Actor) -> int:
    """Approves the KYC of the riders still PENDING or REJECTED, and their pending documents.

    Locks the riders (``locks.lock_riders``). Returns how many riders changed; already approved
    riders are left as they are.
    """
    now = timezone.now()
    changed = [r for r in locks.lock_riders(rider_ids) if r.kyc_status != KycStatus.APPROVED]
    for rider in changed:
        rider.kyc_status = KycStatus.APPROVED
        rider.kyc_reviewed_at = now
        rider.kyc_rejection_reason = ""
        rider.save(update_fields=["kyc_status", "kyc_reviewed_at", "kyc_rejection_reason", "updated_at"])
    KycDocument.objects.filter(rider__in=changed, status=ReviewStatus.PENDING).update(
        status=ReviewStatus.APPROVED, reviewed_by_id=reviewer.pk, reviewed_at=now
    )
    return len(changed)


@transaction.atomic(durable=True)
def rider_kyc_reject(*, rider_ids: Iterable[int], reviewer: Actor, reason: str) -> int:
    """Rejects the riders' KYC with a reason, rejects their pending documents, takes them off duty.

    Locks the riders (``locks.lock_riders``). Returns how many riders changed.
    """
    reason = _require_reason(reason)
    now = timezone.now()
    changed = [r for r in locks.lock_riders(rider_ids) if r.kyc_status != KycStatus.REJECTED]
    for rider in changed:
        if rider.duty_status == DutyStatus.ON:
            _end_duty(rider, reason=DutyEndReason.SUSPENDED, at=now)
        rider.kyc_status = KycStatus.REJECTED
        rider.kyc_reviewed_at = now
        rider.kyc_rejection_reason = reason
        rider.save(
            update_fields=[
                "kyc_status",
                "kyc_reviewed_at",
                "kyc_rejection_reason",
                "duty_status",
                "duty_changed_at",
                "updated_at",
            ]
        )
    KycDocument.objects.filter(rider__in=changed, status=ReviewStatus.PENDING).update(
        status=ReviewStatus.REJECTED, reviewed_by_id=reviewer.pk, reviewed_at=now, rejection_reason=reason
    )
    return len(changed)


@transaction.atomic(durable=True)
def rider_suspend(*, rider_ids: Iterable[int], actor: Actor, reason: str) -> int:
    """Suspends active riders with a reason and takes them off duty. Returns how many changed.

    Locks the riders (``locks.lock_riders``).
    """
    reason = _require_reason(reason)
    now = timezone.now()
    changed = [r for r in locks.lock_riders(rider_ids) if r.status == RiderStatus.ACTIVE]
    for rider in changed:
        if rider.duty_status == DutyStatus.ON:
            _end_duty(rider, reason=DutyEndReason.SUSPENDED, at=now)
        rider.status = RiderStatus.SUSPENDED
        rider.suspension_reason = reason
        rider.save(update_fields=["status", "suspension_reason", "duty_status", "duty_changed_at", "updated_at"])
    return len(changed)
