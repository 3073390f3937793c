"""Rider writes: sign-up, profile, KYC, duty and hours of service, SOS, suspension.

Each write is one transaction that locks the riders it changes (``locks.lock_riders``, id order).
The API token model is DRF's, but only as a table: no HTTP concern reaches this module.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, RuleViolation
from fleet import selectors as fleet_selectors
from fleet import services as fleet_services
from fleet.models import City
from riders import events, locks, selectors
from riders.files import sniff_document
from riders.models import (
    AlertStatus,
    DutyEndReason,
    DutyLog,
    DutyStatus,
    EmergencyAlert,
    KycDocument,
    KycStatus,
    Rating,
    ReviewStatus,
    Rider,
    RiderStatus,
)

Actor = AbstractBaseUser | AnonymousUser

logger = logging.getLogger(__name__)


def _end_duty(rider: Rider, *, reason: str, at: datetime) -> None:
    """Takes a locked rider off duty and closes the open duty log (the caller saves the rider)."""
    rider.duty_status = DutyStatus.OFF
    rider.duty_changed_at = at
    DutyLog.objects.filter(rider=rider, ended_at__isnull=True).update(ended_at=at, end_reason=reason)


def _live_withdraw_after_commit(riders: Iterable[Rider]) -> None:
    """After commit, takes riders who went off duty out of the live map (the city GEO sets dispatch searches)."""
    pairs = [(rider.pk, rider.city_id) for rider in riders]
    if pairs:
        transaction.on_commit(partial(fleet_services.riders_live_withdraw, riders=pairs))


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
    ended = [r for r in changed if r.duty_status == DutyStatus.ON]
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
    _live_withdraw_after_commit(ended)
    return len(changed)


@transaction.atomic(durable=True)
def rider_suspend(*, rider_ids: Iterable[int], actor: Actor, reason: str) -> int:
    """Suspends active riders with a reason, takes them off duty and revokes their API tokens (the app is
    signed out; signing in again works, for the rider to see the suspension). Returns how many changed.

    Locks the riders (``locks.lock_riders``).
    """
    reason = _require_reason(reason)
    now = timezone.now()
    changed = [r for r in locks.lock_riders(rider_ids) if r.status == RiderStatus.ACTIVE]
    ended = [r for r in changed if r.duty_status == DutyStatus.ON]
    for rider in changed:
        if rider.duty_status == DutyStatus.ON:
            _end_duty(rider, reason=DutyEndReason.SUSPENDED, at=now)
        rider.status = RiderStatus.SUSPENDED
        rider.suspension_reason = reason
        rider.save(update_fields=["status", "suspension_reason", "duty_status", "duty_changed_at", "updated_at"])
    rider_token_revoke(user_ids=[rider.user_id for rider in changed])
    _live_withdraw_after_commit(ended)
    return len(changed)


# --- Driver API: sign-up, sign-in, profile, KYC uploads, duty, SOS -----------------------------------


class MobileTaken(Conflict):
    code = "mobile_taken"


class InvalidCredentials(BadRequest):
    code = "invalid_credentials"


class AccountClosed(RuleViolation):
    code = "account_closed"


class DocumentExists(Conflict):
    code = "document_exists"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"


class RiderNotActive(RuleViolation):
    code = "rider_not_active"


class KycNotApproved(RuleViolation):
    code = "kyc_not_approved"


class HoursOfServiceReached(RuleViolation):
    code = "hos_limit_reached"


def normalize_mobile(raw: str) -> str:
    """E.164 as given, or a 10-digit Indian mobile (optionally with 0 / 91 in front) as +91..........

    Raises ``ValueError`` with a sentence for anything else.
    """
    digits = re.sub(r"[\s\-()]", "", raw or "")
    # [0-9], not \d: \d also matches other scripts' digits, which the database's E.164 check refuses.
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", digits):
        return digits
    match = re.fullmatch(r"(?:0|91)?([6-9][0-9]{9})", digits)
    if match:
        return f"+91{match.group(1)}"
    raise ValueError("Enter an E.164 number (+919812345678) or a 10-digit Indian mobile number.")


@transaction.atomic(durable=True)
def rider_signup(*, mobile: str, name: str, city: City, password: str) -> tuple[Rider, str]:
    """Creates the user, the rider (KYC PENDING, off duty) and the rider's API token; returns both.

    The password must already have passed Django's validators. A taken mobile is ``MobileTaken``.
    """
    mobile = normalize_mobile(mobile)
    if Rider.objects.filter(mobile=mobile).exists() or User.objects.filter(username=mobile).exists():
        raise MobileTaken("This mobile number already has an account; sign in instead.")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=mobile, password=password, first_name=name[:150])
            rider = Rider.objects.create(user=user, mobile=mobile, name=name, city=city)
    except IntegrityError as exc:  # a concurrent sign-up with the same mobile won the race
        raise MobileTaken("This mobile number already has an account; sign in instead.") from exc
    token = Token.objects.create(user=user)
    return rider, token.key


def rider_token_issue(*, mobile: str, password: str) -> tuple[Rider, str]:
    """The rider's API token for a correct mobile and password (one token per rider, kept until revoked)."""
    try:
        username = normalize_mobile(mobile)
    except ValueError as exc:
        raise InvalidCredentials("The mobile number or password is wrong.") from exc
    user = authenticate(username=username, password=password)
    rider = Rider.objects.select_related("user").filter(user=user).first() if user is not None else None
    if rider is None:
        raise InvalidCredentials("The mobile number or password is wrong.")
    if rider.status == RiderStatus.OFFBOARDED:
        raise AccountClosed("This rider account has been closed.")
    token, _ = Token.objects.get_or_create(user=rider.user)
    return rider, token.key


def rider_token_revoke(*, user_ids: Iterable[int]) -> int:
    """Deletes the users' API tokens (a sign-out, a suspension): the next request with one is a 401. Returns
    how many were deleted. The token cache of the staff and partner endpoints drops them through the delete's
    signal (``access.token_cache``); riders' tokens are never cached."""
    deleted, _ = Token.objects.filter(user_id__in=list(user_ids)).delete()
    return deleted


def rider_api_token(*, rider_id: int) -> str:
    """The rider's API token, created if missing (the simulator posts as each rider, like the app)."""
    rider = Rider.objects.select_related("user").get(pk=rider_id)
    token, _ = Token.objects.get_or_create(user=rider.user)
    return token.key


PROFILE_FIELDS = ("name", "language", "emergency_contact_name", "emergency_contact_mobile")


@transaction.atomic(durable=True)
def rider_profile_update(*, rider_id: int, changes: dict[str, str]) -> Rider:
    """Changes the fields a rider may edit themselves (``PROFILE_FIELDS``); anything else is refused."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise BadRequest(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.", code="read_only_field")
    (rider,) = locks.lock_riders([rider_id])
    if changes.get("emergency_contact_mobile"):
        changes["emergency_contact_mobile"] = normalize_mobile(changes["emergency_contact_mobile"])
    for field, value in changes.items():
        setattr(rider, field, value)
    if changes:
        rider.save(update_fields=[*changes, "updated_at"])
    return rider


@transaction.atomic(durable=True)
def kyc_document_upload(*, rider_id: int, doc_type: str, upload: UploadedFile, number: str = "") -> KycDocument:
    """Stores a rider's KYC document privately, after checking its size and its real type by its bytes.

    Locks the rider. A live (pending or approved) document of the type is a ``DocumentExists``; a
    rejected one is replaced (its file deleted after commit). A rider whose KYC was rejected goes back
    to PENDING for review.
    """
    if upload.size is not None and upload.size > settings.KYC_MAX_UPLOAD_BYTES:
        limit_mb = settings.KYC_MAX_UPLOAD_BYTES / (1024 * 1024)
        raise FileTooLarge(f"The file is larger than the {limit_mb:g} MB allowed.")
    sniffed = sniff_document(upload)
    (rider,) = locks.lock_riders([rider_id])
    existing = list(KycDocument.objects.filter(rider=rider, doc_type=doc_type))
    if any(d.status != ReviewStatus.REJECTED for d in existing):
        raise DocumentExists("A document of this type is already pending review or approved.")
    for replaced in existing:
        if replaced.file.name:
            transaction.on_commit(partial(replaced.file.storage.delete, replaced.file.name))
        replaced.delete()
    upload.name = f"{doc_type.lower()}{sniffed.extension}"
    document = KycDocument.objects.create(
        rider=rider,
        doc_type=doc_type,
        number=number,
        file=upload,
        content_type=sniffed.content_type,
        size_bytes=upload.size or 0,
    )
    if rider.kyc_status == KycStatus.REJECTED:
        rider.kyc_status = KycStatus.PENDING
        rider.kyc_rejection_reason = ""
        rider.save(update_fields=["kyc_status", "kyc_rejection_reason", "updated_at"])
    return document


@transaction.atomic(durable=True)
def rider_duty_set(*, rider_id: int, status: str, now: datetime | None = None) -> Rider:
    """Puts a rider on or off duty and keeps the duty log in step. Idempotent when already there.

    Locks the rider. Going ON needs an ACTIVE rider with approved KYC and hours of service left.
    """
    now = now or timezone.now()
    (rider,) = locks.lock_riders([rider_id])
    if status == DutyStatus.ON:
        if rider.duty_status == DutyStatus.ON:
            return rider
        if rider.status != RiderStatus.ACTIVE:
            raise RiderNotActive(f"A {rider.get_status_display().lower()} rider cannot go on duty.")
        if rider.kyc_status != KycStatus.APPROVED:
            raise KycNotApproved("Your KYC must be approved before you can go on duty.")
        if selectors.rider_hos(rider_id=rider.pk, now=now).minutes_left <= 0:
            raise HoursOfServiceReached("You have reached your hours-of-service limit; rest before going on duty.")
        rider.duty_status = DutyStatus.ON
        rider.duty_changed_at = now
        DutyLog.objects.create(rider=rider, started_at=now)
    elif rider.duty_status == DutyStatus.ON:
        _end_duty(rider, reason=DutyEndReason.MANUAL, at=now)
        _live_withdraw_after_commit([rider])
    elif rider.duty_status == DutyStatus.AUTO_OFF:  # the rider acknowledges being taken off duty
        rider.duty_status = DutyStatus.OFF
        rider.duty_changed_at = now
    else:
        return rider
    rider.save(update_fields=["duty_status", "duty_changed_at", "updated_at"])
    return rider


@transaction.atomic(durable=True)
def riders_hos_enforce(*, now: datetime | None = None) -> int:
    """Moves every on-duty rider who reached a daily or weekly hours-of-service limit to AUTO_OFF.

    Finds them in one aggregate query, then locks them (``locks.lock_riders``) and re-checks under the
    lock. Returns how many were moved. Run every minute by Celery Beat (``riders.hos_enforce``).
    """
    now = now or timezone.now()
    over = selectors.riders_over_hos_limit(now=now)
    moved = []
    for rider in locks.lock_riders(over):
        if rider.duty_status != DutyStatus.ON:
            continue
        _end_duty(rider, reason=DutyEndReason.HOURS, at=now)
        rider.duty_status = DutyStatus.AUTO_OFF
        rider.save(update_fields=["duty_status", "duty_changed_at", "updated_at"])
        moved.append(rider)
    _live_withdraw_after_commit(moved)
    return len(moved)


def _riders_silent(*, since: datetime) -> QuerySet[Rider]:
    """On-duty riders with no GPS point recorded after ``since`` who also went on duty before it."""
    return (
        Rider.objects.filter(duty_status=DutyStatus.ON)
        .filter(Q(duty_changed_at__lt=since) | Q(duty_changed_at__isnull=True))
        .exclude(fleet_selectors.rider_has_point_since(since=since))
    )


@transaction.atomic(durable=True)
def riders_stale_auto_off(*, now: datetime | None = None) -> int:
    """Moves on-duty riders silent for ``RIDER_STALE_AFTER_S`` to AUTO_OFF, closing their duty logs (STALE).

    Silent means no GPS point in the location log recorded in that window, and on duty for longer than it
    (a rider who never sent a point counts from going on duty). The log, not the live hash, decides: it
    holds every stored point, while the hash is derived from it after commit and can miss a batch when
    Redis fails. Finds them in one query, locks them (``locks.lock_riders``), re-checks under the lock and
    moves them with one UPDATE each for riders and duty logs; after commit they leave the live map.
    Returns how many were moved. Run every minute by Celery Beat (``riders.stale_auto_off``).
    """
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.RIDER_STALE_AFTER_S)
    candidates = list(_riders_silent(since=since).values_list("pk", flat=True))
    if not candidates:
        return 0
    locks.lock_riders(candidates)
    stale = list(_riders_silent(since=since).filter(pk__in=candidates).only("pk", "city_id"))
    stale_ids = [rider.pk for rider in stale]
    DutyLog.objects.filter(rider_id__in=stale_ids, ended_at__isnull=True).update(
        ended_at=now, end_reason=DutyEndReason.STALE
    )
    Rider.objects.filter(pk__in=stale_ids).update(duty_status=DutyStatus.AUTO_OFF, duty_changed_at=now, updated_at=now)
    _live_withdraw_after_commit(stale)
    return len(stale)


@transaction.atomic(durable=True)
def emergency_alert_raise(*, rider: Rider, lat: float | None, lon: float | None, message: str = "") -> EmergencyAlert:
    """Stores an SOS first; dispatchers of the rider's city are told after commit.

    ``rider`` comes with its city, as the request's token authentication loaded it moments ago: an SOS is the
    request that must reach the dashboards fastest, so it reads nothing twice. What the dashboards are told is
    made here from the row just written, so publishing it after commit reads nothing either.
    """
    alert = EmergencyAlert.objects.create(rider=rider, city=rider.city, lat=lat, lon=lon, message=message)
    raised = events.alert_payload(alert, escalated=False)
    transaction.on_commit(partial(_alert_raised, alert_id=alert.pk, city_code=rider.city.code, payload=raised))
    return alert


def _alert_raised(*, alert_id: int, city_code: str, payload: dict[str, Any]) -> None:
    """After an SOS commits: tells dispatchers and the rider's app, then schedules the escalation.

    Dispatchers first: the hand-off to the broker costs more than the publish (a connection on a process's first
    task), and an SOS must reach the dashboards at once. The escalation runs ``riders.sos_escalate`` once the
    alert has waited ``SOS_ESCALATE_AFTER_S``; whichever step fails is logged and the other still runs (the
    every-minute ``riders.sos_escalate_due`` catches an alert whose task was not queued).
    """
    from riders.tasks import sos_escalate_task  # the tasks module imports this one

    try:
        events.emergency_alert_raised(city_code=city_code, payload=payload)
    except Exception:
        logger.error("SOS %s not published to dispatchers; it escalates if nobody takes it", alert_id, exc_info=True)
    try:
        sos_escalate_task.apply_async(args=(alert_id,), countdown=settings.SOS_ESCALATE_AFTER_S)
    except Exception:
        logger.warning("escalation of SOS %s not scheduled; the sweep will escalate it", alert_id, exc_info=True)


@transaction.atomic(durable=True)
def emergency_alert_escalate(*, alert_id: int, now: datetime | None = None) -> bool:
    """Escalates an SOS nobody acknowledged within ``SOS_ESCALATE_AFTER_S``: re-raised to the dispatchers of
    every city after commit, and logged. Returns whether it escalated.

    Locks the alert (``locks.lock_alert``) and sets ``escalated_at`` under the lock, so the per-alert task and the
    every-minute sweep escalate it once between them. A no-op for an alert acknowledged, already escalated, or
    not yet due (a task that ran early).
    """
    now = now or timezone.now()
    alert = locks.lock_alert(alert_id)
    if alert is None or alert.status != AlertStatus.OPEN or alert.escalated_at is not None:
        return False
    if now - alert.raised_at < timedelta(seconds=settings.SOS_ESCALATE_AFTER_S):
        return False
    alert.escalated_at = now
    alert.save(update_fields=["escalated_at"])
    logger.warning(
        "SOS %s of rider %s (%s) unacknowledged for %.0f s: escalated to every city",
        alert.pk,
        alert.rider_id,
        alert.city.code,
        (now - alert.raised_at).total_seconds(),
    )
    transaction.on_commit(partial(events.emergency_alert_escalated, alert.pk))
    return True


def emergency_alerts_escalate_due(*, now: datetime | None = None) -> int:
    """Escalates every SOS past due (the safety net under the per-alert task); returns how many escalated.

    Each alert in its own transaction (``emergency_alert_escalate``), so one failure leaves the others done.
    """
    now = now or timezone.now()
    due = EmergencyAlert.objects.filter(
        status=AlertStatus.OPEN,
        escalated_at__isnull=True,
        raised_at__lte=now - timedelta(seconds=settings.SOS_ESCALATE_AFTER_S),
    ).order_by("pk")
    return sum(emergency_alert_escalate(alert_id=alert_id, now=now) for alert_id in due.values_list("pk", flat=True))


@transaction.atomic(durable=True)
def emergency_alert_acknowledge(*, alert_id: int, user: Actor) -> EmergencyAlert:
    """A dispatcher takes an open SOS: it becomes ACKNOWLEDGED, by whom and when.

    Locks the alert (``locks.lock_alert``), so two dispatchers acknowledging at once get one success and one
    ``Conflict``; an alert that is not OPEN any more is a ``Conflict`` too. After commit the city's dispatchers
    hear ``sos.acknowledged`` and the rider's app goes back to its normal GPS interval (unless another alert of
    the rider is still open).
    """
    if not (user.is_authenticated and getattr(user, "is_staff", False)):
        raise RuleViolation("Only dispatchers acknowledge an SOS.", code="not_a_dispatcher")
    alert = locks.lock_alert(alert_id)
    if alert is None:
        raise NotFound("No such SOS alert.")
    if alert.status != AlertStatus.OPEN:
        raise Conflict("This SOS was already acknowledged.", code="alert_already_acknowledged")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by_id = user.pk
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    transaction.on_commit(partial(events.emergency_alert_acknowledged, alert.pk))
    return alert


def rating_record(*, order_id: int, rider_id: int, stars: int, comment: str, rated_by: Actor) -> Rating:
    """Records a rating of the rider for one order. The caller (``orders.services.order_rate``) checked the
    order is delivered and holds its lock; a second rating of the order is refused by the database's
    one-rating-per-order rule (``IntegrityError``)."""
    if not 1 <= stars <= 5:
        raise BadRequest("Stars go from 1 to 5.")
    return Rating.objects.create(
        order_id=order_id, rider_id=rider_id, stars=stars, comment=comment.strip(), rated_by_id=rated_by.pk
    )
