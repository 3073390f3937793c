"""Dispatch under concurrency, with real threads on separate database connections: orders assigned at the same
moment never take the same free rider, a rider is never given more orders than the vehicle carries, and two
moves of one order never both succeed."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection, transaction
from django.utils import timezone

from config.celery import app as celery_app
from config.errors import DomainError
from fleet import services as fleet_services
from orders import assignment, services
from orders.models import ACTIVE_STATUSES, OfferStatus, Order, OrderOffer, OrderStatus
from orders.services import RiderStep
from riders import locks as rider_locks
from riders.models import DutyStatus, KycStatus, Rider
from tests.fleet.factories import CityFactory, VehicleFactory
from tests.orders.factories import OrderFactory
from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

S = OrderStatus
PICKUP = (12.9716, 77.5946)
KM_OF_LATITUDE = 1 / 111.195


@pytest.fixture(autouse=True)
def _dispatch_settings(settings):
    settings.ORDER_ASSIGN_RADIUS_KM = 5
    settings.ORDER_OFFER_TTL_S = 60
    settings.ORDER_MAX_OFFERS = 5
    settings.LIVE_POSITION_TTL_S = 900


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = was


@pytest.fixture
def city():
    return CityFactory(code=f"R{uuid.uuid4().hex[:8].upper()}", center_lat=PICKUP[0], center_lon=PICKUP[1])


def rider_at(city, km_north: float, **fields) -> Rider:
    now = timezone.now()
    rider = RiderFactory(
        city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=now, **fields
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=5))
    fleet_services.live_position_advance(
        rider_id=rider.pk,
        city_code=city.code,
        is_on_duty=True,
        point=fleet_services.Point(recorded_at=now, lat=PICKUP[0] + km_north * KM_OF_LATITUDE, lon=PICKUP[1]),
    )
    return rider


def order_in(city, **fields) -> Order:
    return OrderFactory(city=city, pickup_lat=PICKUP[0], pickup_lon=PICKUP[1], **fields)


def run_together(actions: list[Callable[[], object]]) -> tuple[list[object], list[BaseException]]:
    """Runs each action in its own thread (its own database connection), all released at once."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(action: Callable[[], object]) -> None:
        try:
            barrier.wait()
            outcome: object = action()
        except BaseException as exc:  # collected, asserted by the test
            outcome = exc
        finally:
            connection.close()
        with lock:
            (errors if isinstance(outcome, BaseException) else results).append(outcome)

    threads = [threading.Thread(target=worker, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return results, errors


def active_per_rider() -> Counter[int]:
    return Counter(Order.objects.filter(status__in=ACTIVE_STATUSES).values_list("rider_id", flat=True))


def test_orders_assigned_at_the_same_moment_each_take_a_different_free_rider(city):
    riders = [rider_at(city, 0.1 * (i + 1)) for i in range(8)]
    orders = [order_in(city) for _ in range(8)]

    results, errors = run_together(
        [lambda order=order: assignment.order_assign(order_id=order.pk, actor=None) for order in orders]
    )

    assert errors == []
    assert sorted(r.offer.rider_id for r in results) == sorted(r.pk for r in riders)  # type: ignore[attr-defined]
    assert set(active_per_rider().values()) == {1}
    assert OrderOffer.objects.filter(status=OfferStatus.PENDING).count() == 8


def test_many_orders_racing_for_few_riders_never_fill_a_rider_beyond_its_capacity(city):
    """12 orders, room for 6 (two riders without a vehicle, two with room for two): exactly 6 are offered,
    no rider over capacity, and the 6 turned away are flagged (nobody was left with room)."""
    bikes = [VehicleFactory(city=city, order_capacity=2) for _ in range(2)]
    riders = [rider_at(city, 0.3), rider_at(city, 0.6), rider_at(city, 0.9, vehicle=bikes[0])]
    riders.append(rider_at(city, 1.2, vehicle=bikes[1]))
    capacity = {riders[0].pk: 1, riders[1].pk: 1, riders[2].pk: 2, riders[3].pk: 2}
    orders = [order_in(city) for _ in range(12)]

    results, errors = run_together(
        [lambda order=order: assignment.order_assign(order_id=order.pk, actor=None) for order in orders]
    )

    assert len(results) == 6
    assert [type(e) for e in errors] == [assignment.NoRiderAvailable] * 6
    assert active_per_rider() == capacity
    assert Order.objects.filter(status=S.CREATED, is_flagged=True).count() == 6


def test_threads_racing_to_assign_one_order_make_one_offer(city):
    """The queued assignment delivered several times at once (acks_late redelivery, a retry): one offer."""
    for i in range(4):
        rider_at(city, 0.2 * (i + 1))
    order = order_in(city)

    results, errors = run_together([lambda: assignment.order_assign_next(order_id=order.pk) for _ in range(6)])

    assert errors == []
    assert sum(result is not None for result in results) == 1
    assert OrderOffer.objects.filter(order=order).count() == 1
    assert order.events.filter(to_status=S.ASSIGNED).count() == 1


def test_dispatchers_racing_on_one_order_leave_it_with_exactly_one_pending_offer(city):
    picks = [rider_at(city, 0.2 * (i + 1)) for i in range(4)]
    dispatcher = UserFactory(is_staff=True)
    order = order_in(city)

    _, errors = run_together(
        [
            lambda rider=rider: assignment.order_assign(order_id=order.pk, actor=dispatcher, rider_id=rider.pk)
            for rider in picks
        ]
    )

    assert errors == []  # they ran one after another: each a reassignment of the one before
    order.refresh_from_db()
    pending = OrderOffer.objects.get(order=order, status=OfferStatus.PENDING)
    assert order.rider_id == pending.rider_id
    assert OrderOffer.objects.filter(order=order, status=OfferStatus.WITHDRAWN).count() == 3
    assert order.events.filter(to_status=S.ASSIGNED).count() == 4


def test_concurrent_expiries_of_one_offer_expire_it_once(city):
    rider_at(city, 0.2)
    order = order_in(city)
    offer = assignment.order_assign(order_id=order.pk, actor=None).offer
    after = offer.expires_at + timedelta(seconds=1)

    results, errors = run_together([lambda: assignment.offer_expire(offer_id=offer.pk, now=after) for _ in range(6)])

    assert errors == []
    assert sorted(results) == [False] * 5 + [True]  # type: ignore[type-var]
    order.refresh_from_db()
    assert (order.status, order.offer_attempts) == (S.CREATED, 1)
    assert order.events.filter(to_status=S.CREATED).count() == 1


def test_a_rider_answering_while_the_offer_expires_either_takes_it_or_loses_it_never_both():
    """Accept, reject and expiry of one offer at once (each believes it is in time): exactly one wins."""
    for _ in range(3):
        city = CityFactory(code=f"R{uuid.uuid4().hex[:8].upper()}")
        rider = rider_at(city, 0.2)
        order = order_in(city)
        offer = assignment.order_assign(order_id=order.pk, actor=None).offer
        just_before, just_after = offer.expires_at - timedelta(seconds=1), offer.expires_at + timedelta(seconds=1)

        accept = partial(
            services.order_rider_step,
            order_id=order.pk,
            rider_id=rider.pk,
            actor=rider.user,
            step=RiderStep(status=S.ACCEPTED),
            now=just_before,
        )
        reject = partial(
            assignment.offer_reject, order_id=order.pk, rider_id=rider.pk, actor=rider.user, now=just_before
        )
        expire = partial(assignment.offer_expire, offer_id=offer.pk, now=just_after)
        results, errors = run_together([accept, reject, expire])

        winners = [r for r in results if r is not False]
        assert len(winners) == 1, (results, errors)
        assert all(isinstance(e, DomainError) for e in errors), errors
        offer.refresh_from_db()
        order.refresh_from_db()
        assert offer.status in (OfferStatus.ACCEPTED, OfferStatus.REJECTED, OfferStatus.EXPIRED)
        assert order.status == (S.ACCEPTED if offer.status == OfferStatus.ACCEPTED else S.CREATED)
        assert order.events.count() == 2  # assigned, then exactly one answer


def test_an_order_is_not_turned_away_while_the_only_rider_with_room_is_locked_by_another_assignment(city):
    """SKIP LOCKED passes over a locked rider; before giving up, assignment waits for it and counts again."""
    rider = rider_at(city, 0.4, vehicle=VehicleFactory(city=city, order_capacity=2))
    order = order_in(city)
    locked, release = threading.Event(), threading.Event()

    def hold_the_rider() -> None:
        try:
            with transaction.atomic():
                rider_locks.lock_riders([rider.pk])  # what a dispatcher's pick of this rider holds
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_rider)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        threading.Timer(0.3, release.set).start()
        result = assignment.order_assign(order_id=order.pk, actor=None)
    finally:
        release.set()
        holder.join(timeout=10)

    assert result.offer.rider_id == rider.pk


def test_a_rider_who_fills_up_while_assignment_waits_for_its_lock_is_not_given_one_more(city):
    """The choosing statement counts the rider's orders before it waits for the rider's lock: here another
    transaction gives the rider its only slot meanwhile. The count under the lock (the transition's) finds it
    full, and the assignment starts again without that rider: nobody is left, so the order is turned away."""
    rider = rider_at(city, 0.4)
    order = order_in(city)
    locked, release = threading.Event(), threading.Event()

    def fill_the_rider() -> None:
        try:
            with transaction.atomic():
                rider_locks.lock_riders([rider.pk])  # what an assignment of this rider holds until its commit
                OrderFactory(city=city, status=S.ASSIGNED, rider=rider, assigned_at=timezone.now())
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=fill_the_rider)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        threading.Timer(0.3, release.set).start()
        with pytest.raises(assignment.NoRiderAvailable):
            assignment.order_assign(order_id=order.pk, actor=None)
    finally:
        release.set()
        holder.join(timeout=10)

    assert active_per_rider() == {rider.pk: 1}
    order.refresh_from_db()
    assert (order.status, order.is_flagged) == (S.CREATED, True)
    assert not OrderOffer.objects.filter(order=order).exists()
