"""Dispatch: the nearest eligible rider gets the offer, a dispatcher can pick one, rejected and expired offers go
to the next rider, an order nobody takes is flagged, and the offer reaches the rider's app after commit."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_redis import get_redis_connection

from config.celery import app as celery_app
from config.errors import NotFound
from config.realtime import rider_group
from config.schedule import SCHEDULE
from fleet import live
from fleet import services as fleet_services
from orders import assignment, services
from orders.assignment import NoRiderAvailable, RiderUnavailable
from orders.models import OfferStatus, Order, OrderOffer, OrderStatus
from orders.services import IllegalTransition, OrderIntake, Place, RiderStep
from orders.tasks import assign_task, offer_expire_task, offers_expire_due_task
from riders.models import DutyLog, DutyStatus, KycStatus, Rider, RiderStatus
from tests.fleet.factories import CityFactory, VehicleFactory
from tests.orders.factories import OrderFactory
from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory
from wallet import selectors as wallet_selectors
from wallet.models import Balance

pytestmark = pytest.mark.django_db

S = OrderStatus
PICKUP = (12.9716, 77.5946)
KM_OF_LATITUDE = 1 / 111.195  # degrees


@pytest.fixture(autouse=True)
def _dispatch_settings(settings):
    settings.ORDER_ASSIGN_RADIUS_KM = 5
    settings.ORDER_OFFER_TTL_S = 60
    settings.ORDER_MAX_OFFERS = 5
    settings.RIDER_COD_LIMIT_PAISE = 100_000
    settings.LIVE_POSITION_TTL_S = 900


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """Queued assignments and scheduled expiries run where they are queued (no broker, no worker)."""
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = was


@pytest.fixture
def city():
    """A city of its own: its GEO set and dispatch group are nobody else's."""
    return CityFactory(code=f"D{uuid.uuid4().hex[:8].upper()}", center_lat=PICKUP[0], center_lon=PICKUP[1])


@pytest.fixture
def dispatcher():
    return UserFactory(is_staff=True)


def rider_at(city, km_north: float | None, **fields) -> Rider:
    """An on-duty, KYC-approved rider of the city, placed ``km_north`` of the pickup in the live GEO set."""
    now = timezone.now()
    values = {"kyc_status": KycStatus.APPROVED, "duty_status": DutyStatus.ON, "duty_changed_at": now, **fields}
    rider = RiderFactory(city=city, **values)
    if rider.duty_status == DutyStatus.ON:
        DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=5))
    if km_north is not None:
        fleet_services.live_position_advance(
            rider_id=rider.pk,
            city_code=city.code,
            is_on_duty=True,
            point=fleet_services.Point(recorded_at=now, lat=PICKUP[0] + km_north * KM_OF_LATITUDE, lon=PICKUP[1]),
        )
    return rider


def order_in(city, **fields) -> Order:
    return OrderFactory(city=city, pickup_lat=PICKUP[0], pickup_lon=PICKUP[1], **fields)


def auto(order: Order, **kwargs) -> assignment.AssignResult:
    return assignment.order_assign(order_id=order.pk, actor=None, **kwargs)


def busy(rider: Rider, count: int = 1) -> None:
    """Gives the rider ``count`` active orders."""
    for _ in range(count):
        OrderFactory(city=rider.city, status=S.ACCEPTED, rider=rider, assigned_at=timezone.now())


# --- automatic assignment --------------------------------------------------------------------------


def test_the_nearest_eligible_rider_gets_a_pending_offer_and_the_order_is_assigned(city):
    far, near, middle = rider_at(city, 3.0), rider_at(city, 0.4), rider_at(city, 1.5)
    order = order_in(city)

    result = auto(order)

    order.refresh_from_db()
    assert (order.status, order.rider_id, order.is_flagged) == (S.ASSIGNED, near.pk, False)
    offer = result.offer
    assert (offer.rider_id, offer.status, offer.offered_by_id) == (near.pk, OfferStatus.PENDING, None)
    assert offer.distance_m == pytest.approx(400, abs=5)
    assert offer.expires_at - offer.offered_at == timedelta(seconds=60)
    assert list(order.events.values_list("from_status", "to_status", "rider")) == [(S.CREATED, S.ASSIGNED, near.pk)]
    assert {far.pk, middle.pk}.isdisjoint(OrderOffer.objects.values_list("rider", flat=True))


def test_riders_beyond_the_radius_are_not_offered_the_order(city, settings):
    settings.ORDER_ASSIGN_RADIUS_KM = 1
    rider_at(city, 1.5)
    order = order_in(city)

    with pytest.raises(NoRiderAvailable):
        auto(order)

    settings.ORDER_ASSIGN_RADIUS_KM = 2
    assert auto(order).offer.distance_m == pytest.approx(1500, abs=5)


def test_the_candidates_are_redis_geosearch_answer_nearest_first_within_the_radius_and_count(city):
    """The hot path's own GEOSEARCH script answers what redis-py's GEOSEARCH does: the same riders in the same
    order, the same distances (to the metre)."""
    for km in (2.2, 0.3, 4.9, 1.1, 0.7, 5.5):
        rider_at(city, km)
    order = order_in(city)
    expected = get_redis_connection("default").geosearch(
        live.geo_key(city.code),
        longitude=PICKUP[1],
        latitude=PICKUP[0],
        radius=5,
        unit="km",
        sort="ASC",
        count=4,
        withdist=True,
    )

    candidates = assignment._nearest_on_duty(order, radius_km=5, count=4)

    assert [c.rider_id for c in candidates] == [int(member) for member, _ in expected]
    for candidate, (_, km) in zip(candidates, expected, strict=True):
        assert candidate.distance_m == pytest.approx(float(km) * 1000, abs=1)  # Redis rounds either to 4 decimals
    assert len(candidates) == 4
    assert (
        assignment._nearest_on_duty(
            order_in(CityFactory(code=f"E{uuid.uuid4().hex[:8].upper()}")), radius_km=5, count=4
        )
        == []
    )


def test_riders_of_another_city_are_not_offered_the_order(city):
    rider_at(CityFactory(code=f"X{uuid.uuid4().hex[:8].upper()}"), 0.1)
    with pytest.raises(NoRiderAvailable):
        auto(order_in(city))


def _off_duty(rider: Rider) -> None:
    Rider.objects.filter(pk=rider.pk).update(duty_status=DutyStatus.OFF)


def _kyc_pending(rider: Rider) -> None:
    Rider.objects.filter(pk=rider.pk).update(duty_status=DutyStatus.OFF, kyc_status=KycStatus.PENDING)


def _suspended(rider: Rider) -> None:
    Rider.objects.filter(pk=rider.pk).update(duty_status=DutyStatus.OFF, status=RiderStatus.SUSPENDED)


def _at_capacity(rider: Rider) -> None:
    busy(rider)


def _over_hours(rider: Rider) -> None:
    DutyLog.objects.filter(rider=rider).update(started_at=timezone.now() - timedelta(minutes=61))


@pytest.mark.parametrize(
    "make_ineligible",
    [_off_duty, _kyc_pending, _suspended, _at_capacity, _over_hours],
    ids=["off duty", "KYC not approved", "suspended", "at capacity", "over hours of service"],
)
def test_an_ineligible_rider_is_passed_over_for_the_next_nearest(city, settings, make_ineligible):
    """Each rule on its own: the nearest rider breaks it (still in the GEO set, as a stale member would be)."""
    settings.HOS_WEEKLY_LIMIT_MINUTES = 60
    nearest, next_nearest = rider_at(city, 0.2), rider_at(city, 0.8)
    make_ineligible(nearest)

    assert auto(order_in(city)).offer.rider_id == next_nearest.pk


def test_a_vehicle_with_room_for_two_orders_takes_a_second_one(city):
    rider = rider_at(city, 0.2, vehicle=VehicleFactory(city=city, order_capacity=2))
    other = rider_at(city, 0.8)
    busy(rider)

    assert auto(order_in(city)).offer.rider_id == rider.pk
    assert auto(order_in(city)).offer.rider_id == other.pk  # now two of two


def test_a_rider_who_was_offered_the_order_before_is_not_offered_it_again(city):
    declined, other = rider_at(city, 0.2), rider_at(city, 0.8)
    order = order_in(city)
    now = timezone.now()
    OrderOffer.objects.create(
        order=order, rider=declined, status=OfferStatus.REJECTED, offered_at=now, expires_at=now + timedelta(1)
    )

    assert auto(order).offer.rider_id == other.pk


def test_a_rider_holding_too_much_cod_cash_is_offered_no_cod_orders_until_a_deposit(city):
    holding, other = rider_at(city, 0.2), rider_at(city, 0.8)
    Balance.objects.create(rider=holding, cod_paise=-100_001)
    assert wallet_selectors.rider_cod_held_paise(rider_id=holding.pk) == 100_001

    assert auto(order_in(city, cod_amount_paise=50_000)).offer.rider_id == other.pk
    assert auto(order_in(city, cod_amount_paise=0)).offer.rider_id == holding.pk


def test_cod_cash_at_the_limit_still_takes_cod_orders(city):
    rider = rider_at(city, 0.2)
    Balance.objects.create(rider=rider, cod_paise=-100_000)
    assert auto(order_in(city, cod_amount_paise=50_000)).offer.rider_id == rider.pk


def test_a_rider_who_handed_in_more_than_collected_holds_no_cod_cash(city):
    rider = rider_at(city, None)
    Balance.objects.create(rider=rider, cod_paise=2_500)
    assert wallet_selectors.rider_cod_held_paise(rider_id=rider.pk) == 0
    assert wallet_selectors.rider_cod_held_paise(rider_id=rider_at(city, None).pk) == 0  # no balance row yet


def test_nobody_eligible_flags_the_order_for_dispatchers_and_leaves_it_created(
    city, django_capture_on_commit_callbacks
):
    busy(rider_at(city, 0.2))
    order = order_in(city)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(NoRiderAvailable) as refused:
        auto(order)

    assert refused.value.code == "no_rider_available"
    order.refresh_from_db()
    assert (order.status, order.rider, order.is_flagged) == (S.CREATED, None, True)
    assert len(callbacks) == 1  # dispatchers see the flag
    assert not OrderOffer.objects.filter(order=order).exists()


def test_a_flagged_order_assigned_later_is_no_longer_flagged(city):
    order = order_in(city, is_flagged=True)
    rider_at(city, 0.3)
    auto(order)
    order.refresh_from_db()
    assert order.is_flagged is False


def _queries_to_assign(city, *, full_riders_nearer: int) -> int:
    for i in range(full_riders_nearer):
        busy(rider_at(city, 0.05 * (i + 1)))
    free = rider_at(city, 0.8)
    order = order_in(city)
    with CaptureQueriesContext(connection) as queries:
        assert auto(order).offer.rider_id == free.pk
    return len(queries)


def test_automatic_assignment_costs_the_same_queries_however_many_riders_it_judges(city):
    """Every candidate is judged in the one query; more riders nearby cost no more queries."""
    few = _queries_to_assign(city, full_riders_nearer=1)
    many = _queries_to_assign(CityFactory(code=f"M{uuid.uuid4().hex[:8].upper()}"), full_riders_nearer=12)
    assert few == many <= 12


def test_the_hot_statements_are_prepared_once_a_connection_has_run_them(city):
    """The order's lock, the choosing statement and the transition are planned once per connection, not per call:
    psycopg prepares them (``DB_PREPARE_THRESHOLD``) because they go through ``config.db.prepared_cursor``."""
    for i in range(3):
        rider_at(city, 0.1 * (i + 1))
        auto(order_in(city))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql = false")
        prepared = [row[0] for row in cursor.fetchall()]

    for marker in ("FOR UPDATE OF o", "FOR NO KEY UPDATE OF r", "WITH changed AS"):
        assert any(marker in statement for statement in prepared), marker


def test_when_the_nearest_riders_are_all_busy_assignment_looks_farther_out_in_the_radius(city):
    for i in range(20):
        busy(rider_at(city, 0.04 * (i + 1)))  # more than the first round judges, all within its kilometre
    farther = rider_at(city, 3.5)
    assert auto(order_in(city)).offer.rider_id == farther.pk


@pytest.mark.parametrize("cod_amount_paise", [0, 50_000], ids=["prepaid order", "COD order"])
def test_the_eligibility_query_agrees_with_the_rules_rider_by_rider(city, settings, cod_amount_paise):
    """The hot path's one SQL statement and the rules a dispatcher's pick is explained by (the ORM's facts,
    hours of service from riders.selectors, COD from wallet.selectors) judge every kind of rider alike."""
    settings.HOS_DAILY_LIMIT_MINUTES, settings.HOS_WEEKLY_LIMIT_MINUTES = 30, 100
    now = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)  # today's window is 12 h
    order = order_in(city, cod_amount_paise=cod_amount_paise)
    eligible = {"free", "worked 40 min yesterday", "room for two", "cod at the limit", "cod credit"}
    riders = {name: rider_at(city, None) for name in eligible}
    for name in ("off duty", "kyc pending", "suspended", "full", "two of two", "offered before"):
        riders[name] = rider_at(city, None)
    for name in ("over today in the open log", "over today, closed", "over the week", "cod over the limit"):
        riders[name] = rider_at(city, None)
    riders["another city"] = rider_at(CityFactory(code=f"X{uuid.uuid4().hex[:8].upper()}"), None)
    _off_duty(riders["off duty"])
    _kyc_pending(riders["kyc pending"])
    _suspended(riders["suspended"])
    busy(riders["full"])
    for name, active in (("room for two", 1), ("two of two", 2)):
        Rider.objects.filter(pk=riders[name].pk).update(vehicle=VehicleFactory(city=city, order_capacity=2))
        busy(riders[name], active)
    OrderOffer.objects.create(
        order=order,
        rider=riders["offered before"],
        status=OfferStatus.EXPIRED,
        offered_at=now,
        expires_at=now + timedelta(1),
    )
    DutyLog.objects.all().delete()
    for name, started_min, ended_min in (
        ("free", -25, None),
        ("worked 40 min yesterday", -24 * 60, -24 * 60 + 40),
        ("over today in the open log", -40, None),
        ("over today, closed", -45, -10),
        ("over the week", -3 * 24 * 60, -3 * 24 * 60 + 110),
    ):
        DutyLogFactory(
            rider=riders[name],
            started_at=now + timedelta(minutes=started_min),
            ended_at=None if ended_min is None else now + timedelta(minutes=ended_min),
            end_reason="" if ended_min is None else "MANUAL",
        )
    for name, cod_paise in (("cod at the limit", -100_000), ("cod credit", 5_000), ("cod over the limit", -100_001)):
        Balance.objects.create(rider=riders[name], cod_paise=cod_paise)

    by_query, by_rules = set(), set()
    for name, rider in riders.items():
        with transaction.atomic():
            if assignment._rider_lock_nearest(order, [assignment._Candidate(rider.pk, 0)], now, wait=False):
                by_query.add(name)
        if assignment._unavailable_reason(order, assignment._rider_judge(order, rider.pk, now)) is None:
            by_rules.add(name)

    assert by_rules == (eligible if cod_amount_paise else eligible | {"cod over the limit"})
    assert by_query == by_rules


# --- a dispatcher's pick, and reassignment ------------------------------------------------------------


def test_a_dispatcher_can_pick_a_rider_who_is_not_the_nearest(city, dispatcher):
    rider_at(city, 0.2)
    picked = rider_at(city, 4.0)
    order = order_in(city)

    result = assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=picked.pk)

    assert (result.order.status, result.order.rider_id) == (S.ASSIGNED, picked.pk)
    assert (result.offer.status, result.offer.offered_by_id) == (OfferStatus.PENDING, dispatcher.pk)
    assert result.offer.distance_m == pytest.approx(4000, abs=10)
    assert order.events.get().actor_id == dispatcher.pk


def test_a_dispatcher_may_pick_a_rider_outside_the_radius(city, dispatcher, settings):
    settings.ORDER_ASSIGN_RADIUS_KM = 1
    picked = rider_at(city, 3.0)
    result = assignment.order_assign(order_id=order_in(city).pk, actor=dispatcher, rider_id=picked.pk)
    assert result.offer.rider_id == picked.pk


@pytest.mark.parametrize(
    ("make_ineligible", "why"),
    [
        (_off_duty, "is not on duty"),
        (_kyc_pending, "KYC is not approved"),
        (_suspended, "is suspended"),
        (_at_capacity, "already carries 1 of 1 orders"),
        (_over_hours, "hours-of-service limit"),
    ],
)
def test_a_dispatchers_pick_who_breaks_a_rule_is_refused_saying_which(city, dispatcher, settings, make_ineligible, why):
    settings.HOS_WEEKLY_LIMIT_MINUTES = 60
    picked = rider_at(city, 0.5)
    make_ineligible(picked)
    order = order_in(city)

    with pytest.raises(RiderUnavailable, match=why) as refused:
        assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=picked.pk)

    assert refused.value.code == "rider_unavailable"
    order.refresh_from_db()
    assert (order.status, order.is_flagged) == (S.CREATED, False)
    assert not OrderOffer.objects.exists()


def test_a_dispatchers_pick_is_held_to_the_cod_limit_and_the_city(city, dispatcher):
    holding = rider_at(city, 0.5)
    Balance.objects.create(rider=holding, cod_paise=-200_000)
    elsewhere = rider_at(CityFactory(code=f"X{uuid.uuid4().hex[:8].upper()}"), None)
    order = order_in(city, cod_amount_paise=10_000)

    with pytest.raises(RiderUnavailable, match="unsettled COD cash"):
        assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=holding.pk)
    with pytest.raises(RiderUnavailable, match="another city"):
        assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=elsewhere.pk)


def test_picking_an_unknown_rider_or_order_is_not_found(city, dispatcher):
    with pytest.raises(NotFound):
        assignment.order_assign(order_id=order_in(city).pk, actor=dispatcher, rider_id=987_654_321)
    with pytest.raises(NotFound):
        assignment.order_assign(order_id=987_654_321, actor=dispatcher)


def test_reassigning_an_offered_order_withdraws_the_offer_and_offers_it_to_the_next_rider(city, dispatcher):
    first, second = rider_at(city, 0.2), rider_at(city, 0.6)
    order = order_in(city)
    offer = auto(order).offer

    result = assignment.order_assign(order_id=order.pk, actor=dispatcher)

    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert (result.order.status, result.order.rider_id, result.offer.rider_id) == (S.ASSIGNED, second.pk, second.pk)
    assert list(order.events.values_list("from_status", "to_status", "rider")) == [
        (S.CREATED, S.ASSIGNED, first.pk),
        (S.ASSIGNED, S.ASSIGNED, second.pk),
    ]


def test_an_accepted_order_can_be_reassigned_to_a_dispatchers_pick(city, dispatcher):
    first, picked = rider_at(city, 0.2), rider_at(city, 0.6)
    order = order_in(city)
    auto(order)
    services.order_rider_step(order_id=order.pk, rider_id=first.pk, actor=first.user, step=RiderStep(status=S.ACCEPTED))

    result = assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=picked.pk)

    assert (result.order.status, result.order.rider_id, result.order.accepted_at) == (S.ASSIGNED, picked.pk, None)
    assert OrderOffer.objects.get(order=order, rider=first).status == OfferStatus.ACCEPTED
    with pytest.raises(RiderUnavailable, match="offered this order before"):
        assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=first.pk)


def test_an_order_picked_up_or_closed_cannot_be_assigned(city, dispatcher):
    rider_at(city, 0.2)
    for status in (S.PICKED_UP, S.DELIVERED, S.CANCELLED):
        fields = {"status": status}
        if status != S.CANCELLED:
            fields.update(rider=RiderFactory(city=city), delivered_at=timezone.now())
        order = order_in(city, **fields)
        with pytest.raises(IllegalTransition, match=f"The order is {status}"):
            assignment.order_assign(order_id=order.pk, actor=dispatcher)


# --- rejection, expiry, and the next rider ------------------------------------------------------------


def test_a_rejected_offer_goes_to_the_next_rider_after_commit(city, django_capture_on_commit_callbacks):
    first, second = rider_at(city, 0.2), rider_at(city, 0.6)
    order = order_in(city)
    offer = auto(order).offer

    with django_capture_on_commit_callbacks(execute=True):
        back = assignment.offer_reject(order_id=order.pk, rider_id=first.pk, actor=first.user)
        assert (back.status, back.rider_id, back.offer_attempts) == (S.CREATED, None, 1)
        assert not OrderOffer.objects.filter(order=order, status=OfferStatus.PENDING).exists()  # not before commit

    offer.refresh_from_db()
    assert (offer.status, offer.answered_at is not None) == (OfferStatus.REJECTED, True)
    order.refresh_from_db()
    assert (order.status, order.rider_id, order.offer_attempts) == (S.ASSIGNED, second.pk, 1)
    assert OrderOffer.objects.get(order=order, status=OfferStatus.PENDING).rider_id == second.pk
    assert list(order.events.values_list("to_status", "rider", "actor")) == [
        (S.ASSIGNED, first.pk, None),
        (S.CREATED, first.pk, first.user.pk),
        (S.ASSIGNED, second.pk, None),
    ]


def test_a_rider_can_reject_only_their_own_pending_offer(city):
    first, other = rider_at(city, 0.2), rider_at(city, 0.6)
    order = order_in(city)
    auto(order)

    with pytest.raises(NotFound):
        assignment.offer_reject(order_id=order.pk, rider_id=other.pk, actor=other.user)
    assignment.offer_reject(order_id=order.pk, rider_id=first.pk, actor=first.user)
    with pytest.raises(NotFound):  # rejected already
        assignment.offer_reject(order_id=order.pk, rider_id=first.pk, actor=first.user)


def _offered_two_minutes_ago(order: Order) -> OrderOffer:
    return auto(order, now=timezone.now() - timedelta(minutes=2)).offer


def test_an_offer_expired_by_its_task_goes_to_the_next_rider(city, django_capture_on_commit_callbacks):
    first, second = rider_at(city, 0.2), rider_at(city, 0.6)
    order = order_in(city)
    offer = _offered_two_minutes_ago(order)

    with django_capture_on_commit_callbacks(execute=True):
        assert offer_expire_task.apply(args=(offer.pk,)).get() is True

    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    order.refresh_from_db()
    assert (order.status, order.rider_id, order.offer_attempts) == (S.ASSIGNED, second.pk, 1)
    assert order.events.filter(to_status=S.CREATED, rider=first).get().note == "offer expired unanswered"


def test_the_sweep_expires_every_offer_past_its_deadline_and_no_other(city, django_capture_on_commit_callbacks):
    rider_at(city, 0.2), rider_at(city, 0.4), rider_at(city, 0.6)
    late, fresh = order_in(city), order_in(city)
    late_offer = _offered_two_minutes_ago(late)
    fresh_offer = auto(fresh).offer

    with django_capture_on_commit_callbacks(execute=True):
        assert offers_expire_due_task.apply().get() == 1

    late_offer.refresh_from_db(), fresh_offer.refresh_from_db()
    assert (late_offer.status, fresh_offer.status) == (OfferStatus.EXPIRED, OfferStatus.PENDING)
    late.refresh_from_db()
    assert late.status == S.ASSIGNED
    assert late.rider_id not in (late_offer.rider_id, fresh_offer.rider_id)


def test_expiring_is_idempotent_and_leaves_offers_not_due_or_answered_alone(city):
    rider = rider_at(city, 0.2)
    order = order_in(city)
    offer = auto(order).offer

    assert assignment.offer_expire(offer_id=offer.pk) is False  # not due yet
    services.order_rider_step(order_id=order.pk, rider_id=rider.pk, actor=rider.user, step=RiderStep(status=S.ACCEPTED))
    assert assignment.offer_expire(offer_id=offer.pk, now=offer.expires_at + timedelta(minutes=5)) is False
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED

    other = order_in(city)
    rider_at(city, 0.3)
    due = _offered_two_minutes_ago(other)
    assert assignment.offer_expire(offer_id=due.pk) is True
    assert assignment.offer_expire(offer_id=due.pk) is False
    assert assignment.offer_expire(offer_id=987_654_321) is False
    other.refresh_from_db()
    assert other.offer_attempts == 1
    assert other.events.filter(to_status=S.CREATED).count() == 1


def test_after_the_last_allowed_failed_offer_the_order_stays_created_and_flagged(
    city, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_MAX_OFFERS = 2
    first, second, _third = rider_at(city, 0.2), rider_at(city, 0.4), rider_at(city, 0.6)
    order = order_in(city)
    auto(order)

    with django_capture_on_commit_callbacks(execute=True):
        assignment.offer_reject(order_id=order.pk, rider_id=first.pk, actor=first.user)
    order.refresh_from_db()
    assert (order.rider_id, order.is_flagged) == (second.pk, False)

    with django_capture_on_commit_callbacks(execute=True):
        assignment.offer_reject(order_id=order.pk, rider_id=second.pk, actor=second.user)

    order.refresh_from_db()
    assert (order.status, order.rider, order.offer_attempts, order.is_flagged) == (S.CREATED, None, 2, True)
    assert OrderOffer.objects.filter(order=order).count() == 2  # the third rider was never asked


def test_the_queued_assignment_flags_an_order_nobody_can_take_without_failing(city):
    order = order_in(city)
    assert assign_task.apply(args=(order.pk,)).get() is None
    order.refresh_from_db()
    assert (order.status, order.is_flagged) == (S.CREATED, True)


def test_the_queued_assignment_leaves_an_order_no_longer_created_alone(city, dispatcher):
    rider_at(city, 0.2)
    picked = rider_at(city, 0.9)
    order = order_in(city)
    assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=picked.pk)

    assert assign_task.apply(args=(order.pk,)).get() is None
    assert assign_task.apply(args=(987_654_321,)).get() is None
    order.refresh_from_db()
    assert order.rider_id == picked.pk
    assert OrderOffer.objects.filter(order=order).count() == 1


# --- intake, push, schedule -----------------------------------------------------------------------


def _intake(city, ref: str) -> OrderIntake:
    return OrderIntake(
        external_ref=ref,
        city_code=city.code,
        pickup=Place(*PICKUP, "MG Road"),
        drop=Place(12.9352, 77.6245, "Koramangala"),
        delivery_fee_paise=4500,
        cod_amount_paise=0,
        metadata={},
    )


def test_a_new_order_is_assigned_automatically_after_its_intake_commits(
    city, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_AUTO_ASSIGN = True
    rider = rider_at(city, 0.3)
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_intake(intake=_intake(city, "AUTO-1"), actor=UserFactory()).order
        assert not OrderOffer.objects.exists()

    order.refresh_from_db()
    assert (order.status, order.rider_id) == (S.ASSIGNED, rider.pk)


def test_with_automatic_assignment_off_a_new_order_waits_for_a_dispatcher(
    city, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_AUTO_ASSIGN = False
    rider_at(city, 0.3)
    with django_capture_on_commit_callbacks(execute=True):
        order = services.order_intake(intake=_intake(city, "MANUAL-1"), actor=UserFactory()).order

    order.refresh_from_db()
    assert (order.status, order.is_flagged) == (S.CREATED, False)


def test_the_offer_reaches_the_riders_app_only_after_commit(city, django_capture_on_commit_callbacks, listen):
    rider = rider_at(city, 0.25)
    order = order_in(city, cod_amount_paise=12_000)
    app = listen(rider_group(rider.pk))

    with django_capture_on_commit_callbacks(execute=True):
        offer = auto(order).offer
        assert app.messages(rider_group(rider.pk), wait_s=0.2) == []  # nothing before commit
    received = [app.next(rider_group(rider.pk), timeout=5) for _ in range(2)]

    assert [m["event"] for m in received] == ["order.changed", "order.offered"]
    message = received[1]
    assert json.loads(json.dumps(message)) == message
    assert message["payload"] == {
        "offer_id": offer.pk,
        "order_id": order.pk,
        "external_ref": order.external_ref,
        "city": city.code,
        "pickup": {"lat": PICKUP[0], "lon": PICKUP[1], "address": order.pickup_address},
        "drop": {"lat": order.drop_lat, "lon": order.drop_lon, "address": order.drop_address},
        "delivery_fee_paise": order.delivery_fee_paise,
        "cod_amount_paise": 12_000,
        "distance_m": offer.distance_m,
        "offered_at": offer.offered_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
    }


def test_a_pending_offer_can_be_pushed_again_and_an_answered_one_is_not(city, listen):
    rider = rider_at(city, 0.25)
    order = order_in(city)
    offer = auto(order).offer
    app = listen(rider_group(rider.pk))

    assignment.offer_pushed(offer.pk)
    message = app.next(rider_group(rider.pk), timeout=5)
    assignment.offer_reject(order_id=order.pk, rider_id=rider.pk, actor=rider.user)
    assignment.offer_pushed(offer.pk)
    assert app.messages(rider_group(rider.pk), wait_s=0.3) == []  # an answered offer is not pushed again

    assert (message["event"], message["payload"]["offer_id"]) == ("order.offered", offer.pk)


def test_an_offer_sends_no_task_of_its_own(city, django_capture_on_commit_callbacks, monkeypatch):
    """The sweep expires offers; an assignment spends nothing on Celery."""
    rider_at(city, 0.25)
    sent: list[object] = []
    monkeypatch.setattr(celery_app, "send_task", lambda *args, **kwargs: sent.append(args))
    monkeypatch.setattr(offer_expire_task, "apply_async", lambda *args, **kwargs: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        auto(order_in(city))

    assert sent == []


def test_the_expiry_sweep_runs_every_five_seconds_and_every_task_is_registered():
    celery_app.loader.import_default_modules()
    entry = next(e for e in SCHEDULE if e.task == "orders.offers_expire_due")
    assert (entry.every_s, entry.crontab, entry.expires_s) == (5, None, 4)
    task = PeriodicTask.objects.get(name=entry.name)
    assert (task.interval.every, task.interval.period, task.crontab) == (5, "seconds", None)
    assert {"orders.assign", "orders.offer_expire", "orders.offers_expire_due"} <= set(celery_app.tasks)
