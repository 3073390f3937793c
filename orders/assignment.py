"""Dispatch: which rider an order is offered to, and what happens when the rider rejects it or lets it expire.

An order is offered to one rider at a time: an ``OrderOffer`` (PENDING, ``expires_at``) and the order ASSIGNED
to that rider, in one transaction. The rider accepts it through ``orders.services.order_rider_step``, rejects
it (``offer_reject``) or lets it expire (``offers_expire_due``, a Celery Beat task every 5 seconds,
re-timed in admin: an offer goes to the next rider that long after its deadline at most, and acceptance is
refused from the deadline on). A rejected or expired offer takes the order back to CREATED and queues
the next automatic assignment; after ``ORDER_MAX_OFFERS`` failed offers the order stays CREATED, flagged for a
dispatcher.

Locking, in this order and no other: the order (``locks.lock_order``), then one rider. Automatic assignment
takes the rider's lock in the same statement that chooses it (``FOR NO KEY UPDATE OF riders_rider SKIP
LOCKED``: two orders assigned at the same moment skip each other's rider instead of queueing on it), and
re-counts the rider's active orders under that lock, in a new statement (the transition's own, which writes
the order, its event and the offer only if the rider still has room): the choosing statement's snapshot may
predate an assignment that committed while it ran, and only a statement started after the lock was granted
sees every assignment of that rider (each one held the same lock until its commit). A rider found full rolls
the whole transaction back, releasing both locks, and the assignment starts again without that rider: rare
(the choosing statement already passes over every rider full in its snapshot), and cheaper than a savepoint
around every attempt (two statements each). No transaction ever holds one rider while waiting for another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_redis import get_redis_connection
from redis.commands.core import Script

from config import metrics
from config.db import prepared_cursor
from config.errors import NotFound, RuleViolation
from config.realtime import publish
from fleet import live
from fleet import selectors as fleet_selectors
from fleet.geo import LatLon, haversine_m
from orders import events, locks
from orders import selectors as order_selectors
from orders.models import ACTIVE_STATUSES, OfferStatus, Order, OrderOffer, OrderStatus
from orders.services import TRANSITIONS, IllegalTransition, RiderFull, _offer_withdraw, transition_apply
from riders import locks as rider_locks
from riders import selectors as rider_selectors
from riders.models import DutyLog, DutyStatus, KycStatus, Rider, RiderStatus
from wallet import selectors as wallet_selectors

Actor = AbstractBaseUser | AnonymousUser
S = OrderStatus

#: The rounds of automatic assignment: (search radius in km, at most, capped by ``ORDER_ASSIGN_RADIUS_KM``;
#: how many of the nearest on-duty riders to judge). The nearest few almost always hold an eligible rider,
#: and a small first radius keeps the GEOSEARCH cheap (Redis's cost grows with the members in the radius:
#: 0.59 ms a search across a 5 km radius holding 2,000 riders, measured); only when those are all busy does
#: the next round look farther, and the last takes every rider in the radius.
_CANDIDATE_ROUNDS = ((1.0, 16), (math.inf, 256), (math.inf, 10_000))


class NoRiderAvailable(RuleViolation):
    code = "no_rider_available"


class RiderUnavailable(RuleViolation):
    code = "rider_unavailable"


@dataclass(frozen=True)
class AssignResult:
    order: Order
    offer: OrderOffer


@dataclass(frozen=True)
class _Candidate:
    rider_id: int
    distance_m: int | None
    #: How many orders the rider's vehicle carries, once the choosing statement has locked the rider: the
    #: transition counts the rider's orders against it (``transition_apply``'s ``rider_capacity``).
    capacity: int | None = None


# --- Eligibility -----------------------------------------------------------------------------------


def _hos_reached(now: datetime) -> Exists:
    """``EXISTS`` for the outer rider: on duty today or over the last 7 days for at least the limit.

    The query form of ``riders.selectors.rider_hos`` (same windows, same overlap sum), correlated so the
    eligibility query judges each candidate in the database.
    """
    day_start, week_start = rider_selectors._windows(now)
    daily = timedelta(minutes=settings.HOS_DAILY_LIMIT_MINUTES)
    weekly = timedelta(minutes=settings.HOS_WEEKLY_LIMIT_MINUTES)
    over = (
        DutyLog.objects.filter(rider=OuterRef("pk"), started_at__lt=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=week_start))
        .order_by()
        .values("rider")
        .annotate(
            today=rider_selectors._on_duty_within(day_start, now),
            week=rider_selectors._on_duty_within(week_start, now),
        )
        .filter(Q(today__gte=daily) | Q(week__gte=weekly))
    )
    return Exists(over)


def _riders_judged(order: Order, now: datetime) -> QuerySet[Any, Any]:
    """Riders annotated with every fact assignment judges them by, for this order at ``now``."""
    return Rider.objects.annotate(
        capacity=Coalesce(F("vehicle__order_capacity"), Value(1)),
        active_orders=order_selectors.rider_active_order_count(),
        offered_before=Exists(OrderOffer.objects.filter(order_id=order.pk, rider=OuterRef("pk"))),
        hos_reached=_hos_reached(now),
        cod_held_paise=wallet_selectors.rider_cod_held_paise_expression(),
    )


# The hot path of automatic assignment, as one statement: every rule of ``_unavailable_reason`` (which judges
# the ORM's ``_riders_judged``) over the GEO candidates, nearest first, locking the first eligible rider in
# distance order. Written out rather than built with the ORM: building and compiling that queryset cost 4.5 ms
# a call, a quarter of the latency budget (bench/assignment_bench.py). A test (``the eligibility query agrees with the
# rules rider by rider``) holds the two forms in step. Hours of service are ``riders.selectors``' overlap sum
# (``_on_duty_within``); COD cash held is ``wallet.selectors.rider_cod_held_paise``. The candidates' ids are
# also given as ``r.id = ANY(...)`` so the planner starts from the primary key whatever its statistics say, and
# the riders offered this order before are read once (an InitPlan on the offers' order index): as a correlated
# ``NOT EXISTS`` the planner, with statistics from when the offers table was small, scanned every offer of
# the fleet for each candidate.
_RIDER_NEAREST_ELIGIBLE = """
    SELECT r.id, coalesce(v.order_capacity, 1)
    FROM unnest(%(candidates)s::bigint[]) WITH ORDINALITY AS c(rider_id, rank)
    JOIN riders_rider r ON r.id = c.rider_id
    LEFT JOIN fleet_vehicle v ON v.id = r.vehicle_id
    WHERE r.id = ANY(%(candidates)s::bigint[])
      AND r.city_id = %(city_id)s
      AND r.status = %(rider_active)s AND r.kyc_status = %(kyc_approved)s AND r.duty_status = %(on_duty)s
      AND (
          SELECT count(*) FROM orders_order o WHERE o.rider_id = r.id AND o.status = ANY(%(active_statuses)s)
      ) < coalesce(v.order_capacity, 1)
      AND NOT r.id = ANY(ARRAY(SELECT f.rider_id FROM orders_orderoffer f WHERE f.order_id = %(order_id)s))
      AND NOT EXISTS (
          SELECT 1 FROM riders_dutylog d
          WHERE d.rider_id = r.id AND d.started_at < %(now)s AND (d.ended_at IS NULL OR d.ended_at > %(week_start)s)
          GROUP BY d.rider_id
          HAVING sum(greatest(
                     least(coalesce(d.ended_at, %(now)s), %(now)s) - greatest(d.started_at, %(day_start)s),
                     interval '0'
                 )) >= %(daily_limit)s
              OR sum(greatest(
                     least(coalesce(d.ended_at, %(now)s), %(now)s) - greatest(d.started_at, %(week_start)s),
                     interval '0'
                 )) >= %(weekly_limit)s
      )
      AND (
          NOT %(is_cod)s
          OR greatest(-coalesce((SELECT b.cod_paise FROM wallet_balance b WHERE b.rider_id = r.id), 0), 0)
             <= %(cod_limit_paise)s
      )
    ORDER BY c.rank
    LIMIT 1
    FOR NO KEY UPDATE OF r
"""


def _rule_params(order: Order, now: datetime) -> dict[str, Any]:
    day_start, week_start = rider_selectors._windows(now)
    return {
        "city_id": order.city_id,
        "order_id": order.pk,
        "rider_active": RiderStatus.ACTIVE.value,
        "kyc_approved": KycStatus.APPROVED.value,
        "on_duty": DutyStatus.ON.value,
        "active_statuses": [str(status) for status in ACTIVE_STATUSES],
        "now": now,
        "day_start": day_start,
        "week_start": week_start,
        "daily_limit": timedelta(minutes=settings.HOS_DAILY_LIMIT_MINUTES),
        "weekly_limit": timedelta(minutes=settings.HOS_WEEKLY_LIMIT_MINUTES),
        "is_cod": order.cod_amount_paise > 0,
        "cod_limit_paise": settings.RIDER_COD_LIMIT_PAISE,
    }


def _rider_lock_nearest(order: Order, candidates: list[_Candidate], now: datetime, *, wait: bool) -> _Candidate | None:
    """Locks the nearest eligible rider among ``candidates`` (nearest first) and returns it with its capacity,
    or None.

    One statement applies every rule and locks the first row in distance order: ``SKIP LOCKED`` passes
    over riders another assignment holds, or, with ``wait``, waits for them. Its count of the rider's orders
    may be stale (see the module's docstring): the transition counts again under the lock.
    """
    if not candidates:
        return None
    by_id = {c.rider_id: c for c in candidates}
    statement = _RIDER_NEAREST_ELIGIBLE if wait else _RIDER_NEAREST_ELIGIBLE + " SKIP LOCKED"
    with prepared_cursor() as cursor:
        cursor.execute(statement, {**_rule_params(order, now), "candidates": list(by_id)})
        row = cursor.fetchone()
    if row is None:
        return None
    rider_id, capacity = row
    return replace(by_id[rider_id], capacity=capacity)


#: The GEOSEARCH of ``_nearest_on_duty``, answering one string, ``"<member> <metres> <member> <metres> ..."``:
#: redis-py parses a GEOSEARCH reply element by element in Python (three per hit), which cost the caller more
#: than the search cost Redis (bench/assignment_profile.py); one bulk string is one read.
_GEO_NEAREST = """
local hits = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm',
                        'ASC', 'COUNT', ARGV[4], 'WITHDIST')
local out = {}
for i, hit in ipairs(hits) do out[i] = hit[1] .. ' ' .. hit[2] end
return table.concat(out, ' ')
"""


@cache
def _geo_nearest() -> Script:
    """The script, registered once a process (its SHA-1 computed once; EVALSHA loads it where Redis lacks it)."""
    return get_redis_connection("default").register_script(_GEO_NEAREST)


def _nearest_on_duty(order: Order, *, radius_km: float, count: int) -> list[_Candidate]:
    """The city's on-duty riders nearest the pickup within ``radius_km``, nearest first, at most ``count``.

    The GEOSEARCH of ``fleet.live.geo_nearest`` on the city's live GEO set, without the read of every hit's
    position hash that it adds (half its cost, measured): dispatch needs only ids and distances, and the
    eligibility query judges duty from the database, so a member whose position expired is no risk.
    """
    reply = _geo_nearest()(
        keys=[live.geo_key(order.city.code)],
        args=[repr(order.pickup_lon), repr(order.pickup_lat), repr(radius_km * 1000), count],
        client=get_redis_connection("default"),
    )
    words = reply.split()
    return [_Candidate(int(rider), round(float(metres))) for rider, metres in zip(words[::2], words[1::2], strict=True)]


def _rider_choose(order: Order, now: datetime, excluded: frozenset[int]) -> _Candidate | None:
    """The nearest eligible rider to the order's pickup, locked; None when there is none in the radius.

    ``excluded``: riders an earlier attempt of this assignment found full under their lock.
    """
    candidates: list[_Candidate] = []
    judged: set[int] = set(excluded)
    for radius_km, count in _CANDIDATE_ROUNDS:
        radius_km = min(radius_km, settings.ORDER_ASSIGN_RADIUS_KM)
        found = _nearest_on_duty(order, radius_km=radius_km, count=count)
        candidates = [c for c in found if c.rider_id not in excluded]
        fresh = [c for c in candidates if c.rider_id not in judged]
        chosen = _rider_lock_nearest(order, fresh, now, wait=False)
        if chosen is not None:
            return chosen
        judged.update(c.rider_id for c in fresh)
        if len(found) < count and radius_km >= settings.ORDER_ASSIGN_RADIUS_KM:
            break  # every rider in the radius judged
    # Every rider in the radius was ineligible or locked by another assignment at that moment. A locked
    # one may still have room when that assignment ends: wait for it rather than turn the order away.
    return _rider_lock_nearest(order, candidates, now, wait=True)


def _unavailable_reason(order: Order, rider: dict[str, Any]) -> str | None:
    """Why a dispatcher's pick may not take the order, in words; None when the rider may."""
    name = rider["name"]
    if rider["city_id"] != order.city_id:
        return f"{name} works in another city."
    if rider["status"] != RiderStatus.ACTIVE:
        return f"{name} is {rider['status'].lower()}."
    if rider["kyc_status"] != KycStatus.APPROVED:
        return f"{name}'s KYC is not approved."
    if rider["duty_status"] != DutyStatus.ON:
        return f"{name} is not on duty."
    if rider["offered_before"]:
        return f"{name} has been offered this order before."
    if rider["active_orders"] >= rider["capacity"]:
        return f"{name} already carries {rider['active_orders']} of {rider['capacity']} orders."
    if rider["hos_reached"]:
        return f"{name} has reached the hours-of-service limit."
    if order.cod_amount_paise > 0 and rider["cod_held_paise"] > settings.RIDER_COD_LIMIT_PAISE:
        return (
            f"{name} holds {rider['cod_held_paise'] / 100:,.2f} of unsettled COD cash, over the limit of "
            f"{settings.RIDER_COD_LIMIT_PAISE / 100:,.2f}; no COD orders until a deposit."
        )
    return None


def _rider_judge(order: Order, rider_id: int, now: datetime) -> dict[str, Any]:
    """The facts ``_unavailable_reason`` judges, for one rider: one query."""
    return (
        _riders_judged(order, now)
        .filter(pk=rider_id)
        .values(
            "name",
            "city_id",
            "status",
            "kyc_status",
            "duty_status",
            "capacity",
            "active_orders",
            "offered_before",
            "hos_reached",
            "cod_held_paise",
        )
        .get()
    )


def _rider_check_pick(order: Order, rider_id: int, now: datetime) -> _Candidate:
    """Locks the dispatcher's pick and checks every rule but the radius; ``RiderUnavailable`` says which failed."""
    if not rider_locks.lock_riders([rider_id]):
        raise NotFound("No such rider.")
    rider = _rider_judge(order, rider_id, now)
    reason = _unavailable_reason(order, rider)
    if reason is not None:
        raise RiderUnavailable(reason)
    position = fleet_selectors.rider_last_position(rider_id=rider_id)
    distance_m = None
    if position is not None:
        distance_m = round(haversine_m(LatLon(position.lat, position.lon), LatLon(order.pickup_lat, order.pickup_lon)))
    return _Candidate(rider_id, distance_m)


# --- Assignment ------------------------------------------------------------------------------------


class _NotCreated(Exception):
    """A queued automatic assignment found the order no longer waiting for a rider."""


def _offer_make(order: Order, chosen: _Candidate, now: datetime, *, actor_id: int | None) -> OrderOffer:
    if order.status == S.ASSIGNED:
        _offer_withdraw(order, now)  # a reassignment's pending offer: an order has one at a time
    offer = OrderOffer(
        order=order,
        rider_id=chosen.rider_id,
        offered_by_id=actor_id,
        distance_m=chosen.distance_m,
        offered_at=now,
        expires_at=now + timedelta(seconds=settings.ORDER_OFFER_TTL_S),
    )
    order.is_flagged = False
    note = "offered by a dispatcher" if actor_id is not None else "offered automatically"
    if chosen.distance_m is not None:
        note += f", {chosen.distance_m} m from the pickup"
    transition_apply(
        order,
        S.ASSIGNED,
        now=now,
        actor_id=actor_id,
        rider_id=chosen.rider_id,
        note=note,
        extra_fields=("is_flagged",),
        offer=offer,
        rider_capacity=chosen.capacity,
    )
    kind = "dispatcher" if actor_id is not None else "automatic"
    transaction.on_commit(metrics.ASSIGNMENTS.labels(kind=kind).inc)
    return offer


@transaction.atomic(durable=True)
def _assign_attempt(
    *,
    order_id: int,
    actor_id: int | None,
    rider_id: int | None,
    now: datetime,
    only_created: bool,
    excluded: frozenset[int],
) -> AssignResult | None:
    order = locks.lock_order(order_id)
    if only_created and order.status != S.CREATED:
        raise _NotCreated
    if S.ASSIGNED not in TRANSITIONS[order.status]:
        raise IllegalTransition(order.status, S.ASSIGNED)
    chosen = _rider_check_pick(order, rider_id, now) if rider_id is not None else _rider_choose(order, now, excluded)
    if chosen is None:
        if order.status == S.CREATED and not order.is_flagged:
            order.is_flagged = True
            order.save(update_fields=["is_flagged", "updated_at"])
            transaction.on_commit(partial(events.order_changed, events.order_payload(order)), robust=True)
        return None
    offer = _offer_make(order, chosen, now, actor_id=actor_id)
    return AssignResult(order=order, offer=offer)


def _assign(
    *, order_id: int, actor_id: int | None, rider_id: int | None, now: datetime, only_created: bool
) -> AssignResult | None:
    """Offers the order to a rider; None (the order flagged, when it waits for one) when nobody may take it.

    Each attempt is a transaction of its own; a rider found full under the lock (``RiderFull``) rolls it back
    and the next attempt goes without that rider, so every attempt but the last excludes one rider more.
    """
    excluded: set[int] = set()
    while True:
        try:
            return _assign_attempt(
                order_id=order_id,
                actor_id=actor_id,
                rider_id=rider_id,
                now=now,
                only_created=only_created,
                excluded=frozenset(excluded),
            )
        except RiderFull as full:
            excluded.add(full.rider_id)


def order_assign(
    *,
    order_id: int,
    actor: AbstractBaseUser | AnonymousUser | None,
    rider_id: int | None = None,
    now: datetime | None = None,
) -> AssignResult:
    """Offers the order to a rider: the nearest eligible one (``rider_id`` None) or the dispatcher's pick.

    From CREATED; from ASSIGNED or ACCEPTED it is a reassignment (the pending offer is withdrawn and the
    rider who had the order told). Locks the order, then the rider (see the module's docstring). Eligible:
    on duty, KYC-approved and active, in the order's city, fewer active orders than the vehicle's
    ``order_capacity`` (1 without a vehicle), under the hours-of-service limits, never offered this order
    before, and for a COD order holding no more than ``RIDER_COD_LIMIT_PAISE`` of unsettled cash. Automatic
    assignment also needs the rider in the city's live GEO set within ``ORDER_ASSIGN_RADIUS_KM`` of the
    pickup, and takes the nearest. The offer lasts ``ORDER_OFFER_TTL_S``.

    After commit: ``order.changed`` (dispatchers, tracking, riders) and ``order.offered`` to the rider's
    group; the sweep (``offers_expire_due``) expires the offer if it is left unanswered. Raises
    ``NoRiderAvailable`` when automatic assignment finds nobody (a CREATED order is flagged for dispatchers
    first, and that commits), ``RiderUnavailable`` naming the rule a dispatcher's pick breaks,
    ``IllegalTransition`` past acceptance, ``NotFound`` for no such order or rider. Raises
    ``redis.RedisError`` when the live GEO set cannot be read.
    """
    result = _assign(
        order_id=order_id,
        actor_id=actor.pk if actor is not None else None,
        rider_id=rider_id,
        now=now or timezone.now(),
        only_created=False,
    )
    if result is None:
        raise NoRiderAvailable(
            f"No eligible rider is on duty within {settings.ORDER_ASSIGN_RADIUS_KM:g} km of the pickup; "
            "the order is flagged for a dispatcher."
        )
    return result


def order_assign_next(*, order_id: int, now: datetime | None = None) -> AssignResult | None:
    """The queued automatic assignment (``orders.assign``): like ``order_assign`` with no rider, but only
    for an order still CREATED, so a duplicate or late task never reassigns one already offered,
    cancelled or picked by a dispatcher. None when it did nothing or found nobody (the order flagged)."""
    try:
        return _assign(order_id=order_id, actor_id=None, rider_id=None, now=now or timezone.now(), only_created=True)
    except (_NotCreated, NotFound):
        return None


def assign_enqueue(order_id: int) -> None:
    """Queues ``orders.assign`` for the order. Call it after commit (``transaction.on_commit``)."""
    from orders.tasks import assign_task  # the tasks module imports this one

    assign_task.delay(order_id)


# --- Offers: push, reject, expire --------------------------------------------------------------------


def offer_pushed(offer_id: int) -> None:
    """Pushes ``order.offered`` to the rider's app (``rider_group``) while the offer still waits; for after
    commit. (An assignment pushes the payload it built in its transaction, sparing this read.)"""
    offer = OrderOffer.objects.select_related("order__city").filter(pk=offer_id, status=OfferStatus.PENDING).first()
    if offer is not None:
        publish(*events.offer_offered(offer))


def _offer_failed(order: Order, now: datetime, *, actor_id: int | None, note: str) -> None:
    """Takes the locked order back to CREATED after its offer failed; queues the next offer or flags it."""
    order.offer_attempts += 1
    exhausted = order.offer_attempts >= settings.ORDER_MAX_OFFERS
    if exhausted:
        order.is_flagged = True
    transition_apply(
        order, S.CREATED, now=now, actor_id=actor_id, note=note, extra_fields=("offer_attempts", "is_flagged")
    )
    if not exhausted:
        transaction.on_commit(partial(assign_enqueue, order.pk), robust=True)


@transaction.atomic(durable=True)
def offer_reject(*, order_id: int, rider_id: int, actor: Actor | None, now: datetime | None = None) -> Order:
    """The rider declines the order's offer: the offer REJECTED, the order back to CREATED, and after commit
    the next automatic assignment queued (or, at ``ORDER_MAX_OFFERS`` failed offers, the order flagged).

    Locks the order. ``NotFound`` unless the rider has this order's pending offer.
    """
    now = now or timezone.now()
    order = locks.lock_order(order_id)
    offer = OrderOffer.objects.filter(order=order, rider_id=rider_id, status=OfferStatus.PENDING).first()
    if offer is None or order.rider_id != rider_id:
        raise NotFound("No offer of this order is waiting for you.")
    offer.status = OfferStatus.REJECTED
    offer.answered_at = now
    offer.save(update_fields=["status", "answered_at"])
    _offer_failed(order, now, actor_id=actor.pk if actor is not None else None, note="offer rejected by the rider")
    return order


def offer_expire(*, offer_id: int, now: datetime | None = None) -> bool:
    """Expires the offer if it still waits past its deadline: like a rejection, without a rider's word.

    Idempotent: True only for the call that expired it; an answered, withdrawn or not yet due offer is left
    alone. Locks the offer's order (every change to an order's offers happens under that lock).
    """
    now = now or timezone.now()
    due = OrderOffer.objects.filter(pk=offer_id, status=OfferStatus.PENDING, expires_at__lte=now)
    order_id = due.values_list("order_id", flat=True).first()
    if order_id is None:
        return False
    try:
        return _offer_expire_locked(order_id=order_id, offer_id=offer_id, now=now)
    except NotFound:  # the order was deleted meanwhile, its offers with it
        return False


@transaction.atomic(durable=True)
def _offer_expire_locked(*, order_id: int, offer_id: int, now: datetime) -> bool:
    order = locks.lock_order(order_id)
    offer = OrderOffer.objects.filter(pk=offer_id, status=OfferStatus.PENDING, expires_at__lte=now).first()
    if offer is None:  # answered while we waited for the lock
        return False
    offer.status = OfferStatus.EXPIRED
    offer.answered_at = now
    offer.save(update_fields=["status", "answered_at"])
    if order.status == S.ASSIGNED and order.rider_id == offer.rider_id:
        _offer_failed(order, now, actor_id=None, note="offer expired unanswered")
    return True


#: The sweep's batch: a backlog larger than this is finished by the next runs.
_SWEEP_BATCH = 5_000


def offers_expire_due(*, now: datetime | None = None) -> int:
    """Expires every pending offer past its deadline (Celery Beat, every few seconds: ``config/schedule.py``).

    The one way offers expire. A Celery task per offer, due at its deadline, was the costliest single step of
    an assignment to send (cProfile) and, as an ETA task, sits in a worker's memory until due, thousands at a
    time at the target rate; the sweep is one indexed query a run (the partial index on pending offers'
    ``expires_at``). Each offer in its own transaction; returns how many it expired.
    """
    now = now or timezone.now()
    due = (
        OrderOffer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:_SWEEP_BATCH]
    )
    return sum(offer_expire(offer_id=offer_id, now=now) for offer_id in list(due))
