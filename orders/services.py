"""Order writes: partner intake, the state machine, the rider's steps with proof of delivery, cancel, rating.

Every transition goes through ``transition_apply`` on an order locked by ``locks.lock_order``: the status
moves only along ``TRANSITIONS``, the step's timestamp is set, an ``OrderEvent`` is written in the same
transaction, and ``order.changed`` goes out after commit. Assignment (which rider gets an offer) lives in
``orders.assignment`` and uses the same function.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from config.db import prepared_cursor
from config.errors import Conflict, NotFound, PayloadTooLarge, RuleViolation, UnsupportedFile
from fleet import selectors as fleet_selectors
from fleet.geo import LatLon, haversine_m
from fleet.models import City
from orders import events, locks
from orders.models import ACTIVE_STATUSES, OfferStatus, Order, OrderEvent, OrderOffer, OrderStatus, ProofMethod
from riders import services as rider_services
from riders.files import sniff_document

Actor = AbstractBaseUser | AnonymousUser

S = OrderStatus
#: The state machine. ASSIGNED means offered to a rider who has not accepted yet: a rejected or expired
#: offer takes the order back to CREATED, a dispatcher's reassignment moves it to ASSIGNED with another
#: rider. CANCELLED only before pickup; FAILED only after acceptance.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.CREATED: frozenset({S.ASSIGNED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.CREATED, S.ACCEPTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.PICKED_UP, S.CANCELLED, S.FAILED}),
    S.PICKED_UP: frozenset({S.DELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
#: What a rider may report through the app.
RIDER_STEPS = (S.ACCEPTED, S.PICKED_UP, S.DELIVERED, S.FAILED)


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, current: str, to: str) -> None:
        super().__init__(f"The order is {current}; it cannot become {to}.")
        self.current = current


class RefConflict(Conflict):
    code = "external_ref_conflict"


class ProofRequired(RuleViolation):
    code = "proof_required"


class WrongOtp(RuleViolation):
    code = "wrong_otp"


class TooFarFromDrop(RuleViolation):
    code = "too_far_from_drop"


class PhotoOutsideTrip(RuleViolation):
    code = "photo_outside_trip"


class ReasonRequired(RuleViolation):
    code = "reason_required"


class OfferExpired(Conflict):
    code = "offer_expired"


class NotDelivered(Conflict):
    code = "not_delivered"


class AlreadyRated(Conflict):
    code = "already_rated"


class PhotoTooLarge(PayloadTooLarge):
    code = "photo_too_large"


class FailureReason:
    """Why a rider could not deliver (``FAILED`` needs one)."""

    CODES = (
        "CUSTOMER_UNAVAILABLE",
        "ADDRESS_NOT_FOUND",
        "CUSTOMER_REFUSED",
        "PACKAGE_DAMAGED",
        "UNSAFE_LOCATION",
        "VEHICLE_BREAKDOWN",
        "OTHER",
    )


_STEP_TIME_FIELD: dict[str, str] = {
    S.ASSIGNED: "assigned_at",
    S.ACCEPTED: "accepted_at",
    S.PICKED_UP: "picked_up_at",
    S.DELIVERED: "delivered_at",
    S.CANCELLED: "closed_at",
    S.FAILED: "closed_at",
}


_ORDER_FIELDS = {field.name: field for field in Order._meta.concrete_fields}
_EVENT_COLUMNS = ("order_id", "from_status", "to_status", "rider_id", "actor_id", "lat", "lon", "note", "occurred_at")
#: An offer's fields as the ORM inserts them: every concrete field but the generated primary key.
_OFFER_FIELDS = tuple(field for field in OrderOffer._meta.concrete_fields if not field.primary_key)


class RiderFull(Exception):
    """The rider an assignment locked turned out to hold as many active orders as the vehicle carries, counted
    by the transition's statement (``transition_apply``'s ``rider_capacity``). Nothing was written; the caller's
    transaction must roll back, which also releases the rider's lock."""

    def __init__(self, rider_id: int) -> None:
        super().__init__(rider_id)
        self.rider_id = rider_id


@cache
def _transition_statement(names: tuple[str, ...], *, guarded: bool, with_offer: bool) -> str:
    """The order's changed fields, its event and (``with_offer``) its new offer in one statement: the ``UPDATE``
    and the ``INSERT``s in CTEs, answering one row when the order was changed.

    One round trip, and no ORM statement to compile: a ``save(update_fields=...)`` and two ``objects.create``
    compiled three statements on every assignment (cProfile of bench/assignment_bench.py's calls). ``guarded``
    adds to the ``UPDATE`` the condition that the rider holds fewer active orders than a given capacity; the
    inserts select from the ``UPDATE``'s row, so a rider found full writes nothing at all. Built once a process
    per shape; only names from the models' metadata go into the text, every value is a parameter.
    """
    order_table, event_table, offer_table = Order._meta.db_table, OrderEvent._meta.db_table, OrderOffer._meta.db_table
    sets = ", ".join(f'"{_ORDER_FIELDS[name].column}" = %s' for name in names)
    guard = f' AND (SELECT count(*) FROM "{order_table}" a WHERE a."rider_id" = %s AND a."status" = ANY(%s)) < %s'  # noqa: S608
    event_columns = ", ".join(f'"{column}"' for column in _EVENT_COLUMNS)
    offer_columns = ", ".join(f'"{field.column}"' for field in _OFFER_FIELDS)
    ctes = [
        f'changed AS (UPDATE "{order_table}" SET {sets} WHERE "id" = %s{guard if guarded else ""} RETURNING "id")',  # noqa: S608
        f'event AS (INSERT INTO "{event_table}" ({event_columns}) SELECT {_placeholders(_EVENT_COLUMNS)} FROM changed)',  # noqa: S608
    ]
    if with_offer:
        ctes.append(
            f'offer AS (INSERT INTO "{offer_table}" ({offer_columns}) '  # noqa: S608
            f'SELECT {_placeholders(_OFFER_FIELDS)} FROM changed RETURNING "id")'
        )
    return f'WITH {", ".join(ctes)} SELECT "id" FROM {"offer" if with_offer else "changed"}'  # noqa: S608


def _placeholders(items: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(items))


def transition_apply(
    order: Order,
    to: str,
    *,
    now: datetime,
    actor_id: int | None = None,
    rider_id: int | None = None,
    lat: float | None = None,
    lon: float | None = None,
    note: str = "",
    extra_fields: tuple[str, ...] = (),
    offer: OrderOffer | None = None,
    rider_capacity: int | None = None,
) -> Order:
    """Moves a locked order to ``to``; raises ``IllegalTransition`` naming its current status.

    The caller holds the order's row lock (``locks.lock_order``) inside its transaction. ``rider_id`` is
    the rider the order goes to (ASSIGNED); back to CREATED the rider is cleared. Writes the step's time,
    one ``OrderEvent`` (with the rider concerned and the position, if any), the ``offer`` if one is given (an
    unsaved ``OrderOffer`` of this order: it is inserted, and gets its primary key) and, after commit, pushes
    ``order.changed`` to dispatchers, the tracking page and the riders concerned, and ``order.offered`` to the
    offer's rider, in one hand-off (robust: a channel-layer failure is logged, never turned into an error of a
    transition that has committed). ``extra_fields`` are fields the caller changed on ``order`` that must be
    saved with it.

    With ``rider_capacity``, the order goes to the rider only if the rider holds fewer active orders than that,
    counted in the same statement; otherwise nothing is written and ``RiderFull`` is raised, leaving ``order``
    changed in memory only: the caller rolls its transaction back. The count sees every assignment committed
    before the statement began, so a caller that holds the rider's row lock (every assignment takes it) counts
    every order the rider has.
    """
    if to not in TRANSITIONS[order.status]:
        raise IllegalTransition(order.status, to)
    previous_rider_id = order.rider_id
    from_status = order.status
    fields = {"status", "updated_at", *extra_fields}
    if to == S.ASSIGNED:
        order.rider_id = rider_id
        fields.add("rider")
    elif to == S.CREATED:
        order.rider_id = None
        order.assigned_at = None
        order.accepted_at = None
        fields |= {"rider", "assigned_at", "accepted_at"}
    if to in _STEP_TIME_FIELD:
        setattr(order, _STEP_TIME_FIELD[to], now)
        fields.add(_STEP_TIME_FIELD[to])
    if to == S.ASSIGNED and from_status == S.ACCEPTED:
        order.accepted_at = None
        fields.add("accepted_at")
    order.status = to
    names = tuple(sorted(fields))
    # What save() does per field: pre_save (updated_at's auto_now, a file's commit), then the database value.
    params = [
        _ORDER_FIELDS[name].get_db_prep_save(_ORDER_FIELDS[name].pre_save(order, False), connection) for name in names
    ]
    params.append(order.pk)
    if rider_capacity is not None:
        params += [order.rider_id, [str(status) for status in ACTIVE_STATUSES], rider_capacity]
    params += [
        order.pk,
        from_status,
        to,
        order.rider_id or previous_rider_id,
        actor_id,
        lat,
        lon,
        note[:255],
        order.updated_at,
    ]
    if offer is not None:
        # What the ORM's insert does per field: pre_save (add=True), then the database value.
        params += [field.get_db_prep_save(field.pre_save(offer, True), connection) for field in _OFFER_FIELDS]
    statement = _transition_statement(names, guarded=rider_capacity is not None, with_offer=offer is not None)
    with prepared_cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        raise RiderFull(order.rider_id or 0)
    also: list[tuple[str, str, dict[str, Any]]] = []
    if offer is not None:
        offer.pk = row[0]
        offer._state.adding, offer._state.db = False, connection.alias
        also.append(events.offer_offered(offer))
    lost = previous_rider_id if previous_rider_id != order.rider_id else None
    transaction.on_commit(partial(events.order_changed, events.order_payload(order), lost, also), robust=True)
    return order


def _offer_withdraw(order: Order, now: datetime) -> None:
    OrderOffer.objects.filter(order=order, status=OfferStatus.PENDING).update(
        status=OfferStatus.WITHDRAWN, answered_at=now
    )


# --- Partner intake ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    address: str


@dataclass(frozen=True)
class OrderIntake:
    """A partner's order as the API validated it; amounts already in minor units."""

    external_ref: str
    city_code: str
    pickup: Place
    drop: Place
    delivery_fee_paise: int
    cod_amount_paise: int
    metadata: dict[str, Any]

    def fingerprint(self) -> str:
        """SHA-256 of the order's content in canonical JSON: equal for the same order sent again."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IntakeResult:
    order: Order
    created: bool
    #: The CREATED event written with a new order (None for the order already stored).
    event: OrderEvent | None = None


def order_intake(*, intake: OrderIntake, actor: Actor) -> IntakeResult:
    """Creates the partner's order, or returns the one already stored under its ``external_ref``.

    The same ref with the same content from the same account is the same order (``created=False``: a
    retried push, 200 at the API); with different content, or from another account (refs are unique across
    partners, and one partner never reads another's order this way), it is ``RefConflict`` (409), and
    nothing changes. Two pushes of one ref at the same moment make one order: the unique ``external_ref``
    decides, the loser reads the winner's row. The CREATED event is written with it, and after commit
    ``order.changed`` goes to the city's dispatchers.
    """
    fingerprint = intake.fingerprint()
    try:
        order, event = _order_create(intake, fingerprint, actor)
    except IntegrityError:
        existing = Order.objects.select_related("city").filter(external_ref=intake.external_ref).first()
        if existing is None:  # the unique ref was not what failed: a real error
            raise
        if existing.intake_hash != fingerprint or existing.created_by_id != actor.pk:
            raise RefConflict(
                f"An order with external_ref {intake.external_ref!r} exists with different content."
            ) from None
        return IntakeResult(order=existing, created=False)
    return IntakeResult(order=order, created=True, event=event)


@transaction.atomic(durable=True)
def _order_create(intake: OrderIntake, fingerprint: str, actor: Actor) -> tuple[Order, OrderEvent]:
    city = City.objects.filter(code=intake.city_code.upper(), is_active=True).first()
    if city is None:
        raise NotFound(f"No active city has the code {intake.city_code!r}.")
    order = Order.objects.create(
        external_ref=intake.external_ref,
        city=city,
        created_by_id=actor.pk,
        pickup_lat=intake.pickup.lat,
        pickup_lon=intake.pickup.lon,
        pickup_address=intake.pickup.address,
        drop_lat=intake.drop.lat,
        drop_lon=intake.drop.lon,
        drop_address=intake.drop.address,
        delivery_fee_paise=intake.delivery_fee_paise,
        cod_amount_paise=intake.cod_amount_paise,
        metadata=intake.metadata,
        intake_hash=fingerprint,
    )
    event = OrderEvent.objects.create(order=order, from_status="", to_status=S.CREATED, actor_id=actor.pk)
    transaction.on_commit(partial(events.order_changed, events.order_payload(order)), robust=True)
    if settings.ORDER_AUTO_ASSIGN:
        from orders.assignment import assign_enqueue  # orders.assignment imports this module

        # Robust: the order is committed whatever the broker says; a dispatcher can still assign it.
        transaction.on_commit(partial(assign_enqueue, order.pk), robust=True)
    return order, event


# --- Cancel and rating (partners, ops) ---------------------------------------------------------------


@transaction.atomic(durable=True)
def order_cancel(*, order_id: int, actor: Actor, reason: str, now: datetime | None = None) -> Order:
    """Cancels an order that is not picked up yet (``IllegalTransition`` after); a pending offer is withdrawn.

    Locks the order. The reason is required and kept on the order and its event.
    """
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Say why the order is cancelled.")
    now = now or timezone.now()
    order = locks.lock_order(order_id)
    order.cancel_reason = reason[:255]
    transition_apply(order, S.CANCELLED, now=now, actor_id=actor.pk, note=reason, extra_fields=("cancel_reason",))
    _offer_withdraw(order, now)
    return order


@transaction.atomic(durable=True)
def order_rate(*, order_id: int, actor: Actor, stars: int, comment: str = "") -> Order:
    """Rates the rider of a delivered order, once: ``NotDelivered`` before delivery, ``AlreadyRated`` after
    the first rating (the database's one-rating-per-order rule decides between two at once)."""
    order = locks.lock_order(order_id)
    if order.status != S.DELIVERED or order.rider_id is None:
        raise NotDelivered(f"Only a delivered order can be rated; this one is {order.status}.")
    try:
        with transaction.atomic():
            rider_services.rating_record(
                order_id=order.pk, rider_id=order.rider_id, stars=stars, comment=comment, rated_by=actor
            )
    except IntegrityError:
        raise AlreadyRated("This order has been rated already.") from None
    return order


# --- The rider's steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiderStep:
    """A step the rider reports from the app: the status and what proves it."""

    status: str
    lat: float | None = None
    lon: float | None = None
    otp: str = ""
    photo: UploadedFile | None = None
    reason: str = ""
    note: str = ""


@transaction.atomic(durable=True)
def order_rider_step(
    *, order_id: int, rider_id: int, actor: Actor, step: RiderStep, now: datetime | None = None
) -> Order:
    """Moves the rider's own order one step: ACCEPTED, PICKED_UP, DELIVERED or FAILED.

    Locks the order. An order that is not this rider's is ``NotFound`` (riders never learn about other
    riders' orders). Reporting the status the order already has is answered with the order, unchanged (a
    retry after a lost response). ACCEPTED takes the rider's pending offer (``OfferExpired`` once its time
    is up). DELIVERED needs proof, a photo or the order's OTP, and a position (the one sent, else the
    rider's last known) within ``ORDER_PROOF_MAX_DISTANCE_M`` of the drop; a photo whose own timestamp
    falls outside the trip is refused. FAILED needs a reason code. A delivery sends
    ``events.order_delivered`` inside this transaction: the wallet's earning and COD postings commit with it.
    """
    now = now or timezone.now()
    order = locks.lock_order(order_id)
    if order.rider_id != rider_id:
        raise NotFound("No such order.")
    if step.status == order.status:
        return order
    if step.status not in TRANSITIONS[order.status]:
        raise IllegalTransition(order.status, step.status)
    extra: tuple[str, ...] = ()
    note = step.note
    if step.status == S.ACCEPTED:
        _offer_take(order, rider_id, now)
    elif step.status == S.DELIVERED:
        extra = _proof_check(order, rider_id, step, now)
    elif step.status == S.FAILED:
        if step.reason not in FailureReason.CODES:
            raise ReasonRequired(f"FAILED needs a reason, one of {', '.join(FailureReason.CODES)}.")
        order.failure_reason = step.reason
        extra = ("failure_reason",)
        note = step.note or step.reason
    transition_apply(
        order,
        step.status,
        now=now,
        actor_id=actor.pk,
        lat=step.lat,
        lon=step.lon,
        note=note,
        extra_fields=extra,
    )
    if step.status == S.DELIVERED:
        events.order_delivered_send(order)
    return order


def _offer_take(order: Order, rider_id: int, now: datetime) -> None:
    offer = OrderOffer.objects.filter(order=order, rider_id=rider_id, status=OfferStatus.PENDING).first()
    if offer is None or offer.expires_at <= now:
        raise OfferExpired("The offer has expired; the order goes to another rider.")
    offer.status = OfferStatus.ACCEPTED
    offer.answered_at = now
    offer.save(update_fields=["status", "answered_at"])


def _proof_check(order: Order, rider_id: int, step: RiderStep, now: datetime) -> tuple[str, ...]:
    """Checks a delivery's proof and position; stores the photo or notes the OTP. Returns the fields set."""
    if step.photo is None and not step.otp:
        raise ProofRequired("DELIVERED needs proof: a photo of the delivery or the customer's OTP.")
    if step.otp and step.otp != order.delivery_otp:  # an OTP sent is checked, with a photo too
        raise WrongOtp("The delivery OTP does not match.")
    extension = _photo_check(order, step.photo, now) if step.photo is not None else None
    position: LatLon | None = None
    if step.lat is not None and step.lon is not None:
        position = LatLon(step.lat, step.lon)
    else:
        known = fleet_selectors.rider_last_position(rider_id=rider_id)
        position = LatLon(known.lat, known.lon) if known is not None else None
    if position is None:
        raise TooFarFromDrop("No position is known for you; send lat and lon with the delivery.")
    away_m = haversine_m(position, LatLon(order.drop_lat, order.drop_lon))
    if away_m > settings.ORDER_PROOF_MAX_DISTANCE_M:
        raise TooFarFromDrop(
            f"You are {away_m:,.0f} m from the drop; deliver within {settings.ORDER_PROOF_MAX_DISTANCE_M} m of it."
        )
    if step.photo is None:
        order.proof_method = ProofMethod.OTP
        return ("proof_method",)
    order.proof_method = ProofMethod.PHOTO
    # Named by what the bytes are, never by the name the phone sent (a JPEG called x.html stays a .jpg).
    order.proof_photo.save(f"proof{extension}", step.photo, save=False)
    return ("proof_method", "proof_photo")


#: EXIF tags: DateTimeOriginal, and its offset from UTC where the camera wrote one.
_EXIF_TAKEN_AT, _EXIF_OFFSET = 0x9003, 0x9011
#: A phone's clock may be this far off the server's, either way.
_CLOCK_SLACK = timedelta(minutes=2)


def _photo_check(order: Order, photo: UploadedFile, now: datetime) -> str:
    """Size, type (by its bytes) and the camera's own time against the trip; returns the file extension."""
    if photo.size is not None and photo.size > settings.ORDER_PROOF_PHOTO_MAX_BYTES:
        raise PhotoTooLarge(f"The photo is larger than {settings.ORDER_PROOF_PHOTO_MAX_BYTES // (1024 * 1024)} MB.")
    kind = sniff_document(photo)
    if not kind.content_type.startswith("image/"):
        raise UnsupportedFile("The proof must be a JPEG, PNG or WebP photo.")
    taken_at = _photo_taken_at(photo)
    if taken_at is None:
        return kind.extension
    trip_start = (order.picked_up_at or order.accepted_at or order.created_at) - _CLOCK_SLACK
    if not trip_start <= taken_at <= now + _CLOCK_SLACK:
        raise PhotoOutsideTrip("The photo was taken outside this trip; take one at the drop.")
    return kind.extension


def _photo_taken_at(photo: UploadedFile) -> datetime | None:
    """When the camera says the photo was taken (EXIF), as an aware time; None when it says nothing usable.

    EXIF times have no zone unless an offset tag comes with them; without one the portal's zone is assumed.
    """
    photo.seek(0)
    try:
        with Image.open(photo) as image:
            exif = image.getexif()
            sub = exif.get_ifd(0x8769)  # the Exif sub-IFD holds DateTimeOriginal
            raw, offset = sub.get(_EXIF_TAKEN_AT), sub.get(_EXIF_OFFSET)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    finally:
        photo.seek(0)
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007 - zone applied below
    except ValueError:
        return None
    if isinstance(offset, str):
        try:
            return datetime.fromisoformat(taken.isoformat() + offset.strip("\x00 "))
        except ValueError:
            pass
    return timezone.make_aware(taken)
