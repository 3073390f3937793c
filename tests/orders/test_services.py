"""The order state machine and its services, against the real database: intake, every transition legal and
illegal, the rider's steps with proof of delivery, cancel, rating, and what goes out after commit."""

import io
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image

from orders import events, services
from orders.models import OfferStatus, Order, OrderEvent, OrderOffer, OrderStatus, ProofMethod
from orders.services import TRANSITIONS, IntakeResult, OrderIntake, Place, RiderStep
from riders.models import Rating
from tests.fleet.factories import CityFactory
from tests.orders.factories import OrderFactory
from tests.riders.factories import RiderFactory, UserFactory

S = OrderStatus
DROP = (12.9352, 77.6245)
pytestmark = pytest.mark.django_db


@pytest.fixture
def partner():
    return UserFactory()


@pytest.fixture
def city():
    return CityFactory(code="BLR")


def intake(ref: str = "QB-1", **changes) -> OrderIntake:
    values = {
        "external_ref": ref,
        "city_code": "blr",
        "pickup": Place(12.9716, 77.5946, "MG Road"),
        "drop": Place(*DROP, "Koramangala"),
        "delivery_fee_paise": 4500,
        "cod_amount_paise": 0,
        "metadata": {"items": [{"sku": "A1", "qty": 2}]},
    }
    return OrderIntake(**{**values, **changes})


def order_at(status: str, **fields) -> Order:
    """An order already in ``status``, with a rider when the status needs one."""
    now = timezone.now()
    rider = RiderFactory()
    values = {"status": status}
    if status != S.CREATED and status != S.CANCELLED:
        values.update(rider=rider, assigned_at=now - timedelta(minutes=30))
    if status in (S.ACCEPTED, S.PICKED_UP, S.DELIVERED, S.FAILED):
        values["accepted_at"] = now - timedelta(minutes=25)
    if status in (S.PICKED_UP, S.DELIVERED, S.FAILED):
        values["picked_up_at"] = now - timedelta(minutes=20)
    if status == S.DELIVERED:
        values["delivered_at"] = now - timedelta(minutes=1)
    return OrderFactory(**{**values, **fields})


def pending_offer(order: Order, *, expires_in_s: float = 60) -> OrderOffer:
    now = timezone.now()
    return OrderOffer.objects.create(
        order=order,
        rider=order.rider,
        offered_at=now - timedelta(seconds=120),
        expires_at=now + timedelta(seconds=expires_in_s),
    )


def jpeg(*, taken_at: str | None = None, size: tuple[int, int] = (32, 32)) -> SimpleUploadedFile:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    if taken_at is not None:
        exif.get_ifd(0x8769)[0x9003] = taken_at
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return SimpleUploadedFile("door.jpg", buffer.getvalue(), content_type="image/jpeg")


def step(order: Order, status: str, **kwargs) -> Order:
    return services.order_rider_step(
        order_id=order.pk, rider_id=order.rider_id, actor=order.rider.user, step=RiderStep(status=status, **kwargs)
    )


# --- intake ------------------------------------------------------------------------------------------


def test_intake_creates_the_order_with_its_created_event_and_tells_dispatchers(
    city, partner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        result = services.order_intake(intake=intake(), actor=partner)

    assert result.created is True
    order = result.order
    assert (order.status, order.city, order.created_by, order.delivery_fee_paise) == (S.CREATED, city, partner, 4500)
    assert list(order.events.values_list("from_status", "to_status", "actor")) == [("", S.CREATED, partner.pk)]
    assert len(callbacks) == 1


def test_the_same_ref_with_the_same_content_is_the_same_order(city, partner):
    first = services.order_intake(intake=intake(), actor=partner)
    again = services.order_intake(intake=intake(), actor=partner)
    assert again == IntakeResult(order=first.order, created=False)
    assert Order.objects.count() == 1
    assert OrderEvent.objects.count() == 1


def test_the_same_ref_with_other_content_is_a_conflict_and_changes_nothing(city, partner):
    services.order_intake(intake=intake(), actor=partner)
    with pytest.raises(services.RefConflict):
        services.order_intake(intake=intake(delivery_fee_paise=9900), actor=partner)
    assert Order.objects.get().delivery_fee_paise == 4500


def test_the_same_ref_from_another_partner_is_a_conflict_not_their_order(city, partner):
    services.order_intake(intake=intake(), actor=partner)
    with pytest.raises(services.RefConflict):
        services.order_intake(intake=intake(), actor=UserFactory())


def test_an_unknown_city_is_not_found(partner):
    with pytest.raises(services.NotFound):
        services.order_intake(intake=intake(city_code="ZZZ"), actor=partner)
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_pushes_of_one_ref_make_one_order():
    CityFactory(code="BLR")
    partner = UserFactory()
    barrier = threading.Barrier(5)
    results: list[IntakeResult] = []
    errors: list[BaseException] = []

    def push() -> None:
        try:
            barrier.wait()
            results.append(services.order_intake(intake=intake(), actor=partner))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=push) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(r.created for r in results) == [False, False, False, False, True]
    assert len({r.order.pk for r in results}) == 1
    assert Order.objects.count() == 1


# --- the state machine ---------------------------------------------------------------------------------

ALL = list(S.values)


@pytest.mark.parametrize(("start", "to"), [(a, b) for a in ALL for b in ALL])
def test_every_transition_is_allowed_exactly_when_the_machine_says(start, to):
    order = order_at(start)
    rider_id = order.rider_id or RiderFactory().pk
    locked = Order.objects.select_for_update().get(pk=order.pk)
    now = timezone.now()
    if to in TRANSITIONS[start]:
        services.transition_apply(locked, to, now=now, rider_id=rider_id)
        order.refresh_from_db()
        assert order.status == to
        event = order.events.get()
        assert (event.from_status, event.to_status) == (start, to)
    else:
        with pytest.raises(services.IllegalTransition) as refused:
            services.transition_apply(locked, to, now=now, rider_id=rider_id)
        assert refused.value.current == start
        assert start in refused.value.message
        order.refresh_from_db()
        assert order.status == start
        assert not order.events.exists()


def test_the_machine_is_the_documented_one():
    assert TRANSITIONS[S.CREATED] == {S.ASSIGNED, S.CANCELLED}
    assert TRANSITIONS[S.PICKED_UP] == {S.DELIVERED, S.FAILED}  # no cancel after pickup
    assert S.FAILED not in TRANSITIONS[S.ASSIGNED]  # no failure before acceptance
    for final in (S.DELIVERED, S.CANCELLED, S.FAILED):
        assert TRANSITIONS[final] == frozenset()


def test_going_back_to_created_clears_the_rider_and_keeps_it_on_the_event():
    order = order_at(S.ASSIGNED)
    rider_id = order.rider_id
    services.transition_apply(Order.objects.get(pk=order.pk), S.CREATED, now=timezone.now(), note="offer expired")
    order.refresh_from_db()
    assert (order.rider_id, order.assigned_at) == (None, None)
    assert order.events.get().rider_id == rider_id


def _offer_row(offer: OrderOffer) -> dict[str, object]:
    row = OrderOffer.objects.filter(pk=offer.pk).values().get()
    return {name: value for name, value in row.items() if name not in ("id", "order_id")}


@pytest.mark.parametrize("offered_by", ["dispatcher", "nobody"])
def test_an_offer_written_with_its_transition_is_the_row_the_orm_writes(offered_by):
    """The transition's statement inserts the offer itself; column for column it is what ``objects.create``
    stores for the same offer, and the instance gets its primary key."""
    now = timezone.now()
    rider, actor = RiderFactory(), (UserFactory() if offered_by == "dispatcher" else None)
    fields = {
        "rider_id": rider.pk,
        "offered_by_id": actor.pk if actor else None,
        "distance_m": 420,
        "offered_at": now,
        "expires_at": now + timedelta(seconds=60),
    }
    by_orm = OrderOffer.objects.create(order=order_at(S.CREATED), **fields)
    folded_order = Order.objects.select_for_update().get(pk=order_at(S.CREATED).pk)
    folded = OrderOffer(order=folded_order, **fields)

    services.transition_apply(folded_order, S.ASSIGNED, now=now, rider_id=rider.pk, offer=folded, rider_capacity=1)

    assert folded.pk is not None
    assert not folded._state.adding
    assert OrderOffer.objects.get(order=folded_order).pk == folded.pk
    assert _offer_row(folded) == _offer_row(by_orm)
    assert _offer_row(folded)["status"] == OfferStatus.PENDING


def test_an_assignment_to_a_rider_found_full_writes_nothing():
    """``rider_capacity`` is counted by the transition's own statement: at capacity, no order change, no event,
    no offer, and ``RiderFull`` names the rider."""
    rider = order_at(S.ACCEPTED).rider
    order = order_at(S.CREATED)
    now = timezone.now()
    offer = OrderOffer(order=order, rider=rider, offered_at=now, expires_at=now + timedelta(seconds=60))

    with pytest.raises(services.RiderFull) as full:
        services.transition_apply(
            Order.objects.select_for_update().get(pk=order.pk),
            S.ASSIGNED,
            now=now,
            rider_id=rider.pk,
            offer=offer,
            rider_capacity=1,
        )

    assert full.value.rider_id == rider.pk
    order.refresh_from_db()
    assert (order.status, order.rider_id) == (S.CREATED, None)
    assert not order.events.exists()
    assert not OrderOffer.objects.filter(order=order).exists()


def test_an_assignment_to_a_rider_with_room_left_goes_through():
    rider = order_at(S.ACCEPTED).rider
    order = Order.objects.select_for_update().get(pk=order_at(S.CREATED).pk)
    services.transition_apply(order, S.ASSIGNED, now=timezone.now(), rider_id=rider.pk, rider_capacity=2)
    order.refresh_from_db()
    assert (order.status, order.rider_id) == (S.ASSIGNED, rider.pk)
    assert order.events.get().rider_id == rider.pk


# --- the rider's steps ---------------------------------------------------------------------------------


def test_a_rider_accepts_a_pending_offer(django_capture_on_commit_callbacks):
    order = order_at(S.ASSIGNED)
    offer = pending_offer(order)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        step(order, S.ACCEPTED, lat=12.97, lon=77.59)
    order.refresh_from_db()
    offer.refresh_from_db()
    assert (order.status, offer.status) == (S.ACCEPTED, OfferStatus.ACCEPTED)
    assert order.accepted_at is not None
    event = order.events.get()
    assert (event.to_status, event.actor_id, event.lat, event.lon) == (S.ACCEPTED, order.rider.user_id, 12.97, 77.59)
    assert len(callbacks) == 1  # order.changed


def test_an_expired_offer_cannot_be_accepted():
    order = order_at(S.ASSIGNED)
    pending_offer(order, expires_in_s=-1)
    with pytest.raises(services.OfferExpired):
        step(order, S.ACCEPTED)
    order.refresh_from_db()
    assert order.status == S.ASSIGNED


def test_another_riders_order_is_not_found():
    order = order_at(S.ACCEPTED)
    stranger = RiderFactory()
    with pytest.raises(services.NotFound):
        services.order_rider_step(
            order_id=order.pk, rider_id=stranger.pk, actor=stranger.user, step=RiderStep(status=S.PICKED_UP)
        )


def test_repeating_the_current_status_changes_nothing():
    order = order_at(S.PICKED_UP)
    assert step(order, S.PICKED_UP).status == S.PICKED_UP
    assert not order.events.exists()


def test_an_illegal_step_is_refused_naming_the_current_state():
    order = order_at(S.ACCEPTED)
    with pytest.raises(services.IllegalTransition, match="ACCEPTED"):
        step(order, S.DELIVERED, otp=order.delivery_otp, lat=DROP[0], lon=DROP[1])


def test_delivered_with_the_otp_at_the_drop_tells_the_wallet_once_inside_the_transaction():
    order = order_at(S.PICKED_UP, cod_amount_paise=25_000)
    heard = []

    def receiver(**kwargs):
        assert connection.in_atomic_block  # the receiver's postings commit with the delivery
        heard.append({k: kwargs[k] for k in ("order_id", "rider_id", "delivery_fee_paise", "cod_amount_paise")})

    events.order_delivered.connect(receiver)
    try:
        step(order, S.DELIVERED, otp=order.delivery_otp, lat=DROP[0] + 0.001, lon=DROP[1])
        step(order, S.DELIVERED, otp=order.delivery_otp)  # a retried request
    finally:
        events.order_delivered.disconnect(receiver)

    order.refresh_from_db()
    assert (order.status, order.proof_method) == (S.DELIVERED, ProofMethod.OTP)
    assert order.delivered_at is not None
    assert heard == [
        {"order_id": order.pk, "rider_id": order.rider_id, "delivery_fee_paise": 4500, "cod_amount_paise": 25_000}
    ]


def test_a_subscriber_refusing_the_delivery_rolls_it_back():
    order = order_at(S.PICKED_UP)

    def receiver(**kwargs):
        raise services.RuleViolation("the wallet refused")

    events.order_delivered.connect(receiver)
    try:
        with pytest.raises(services.RuleViolation):
            step(order, S.DELIVERED, otp=order.delivery_otp, lat=DROP[0], lon=DROP[1])
    finally:
        events.order_delivered.disconnect(receiver)
    order.refresh_from_db()
    assert order.status == S.PICKED_UP
    assert not order.events.exists()


@pytest.mark.parametrize(
    ("proof", "error"),
    [
        ({}, services.ProofRequired),
        ({"otp": "not-it"}, services.WrongOtp),
    ],
)
def test_delivered_without_valid_proof_is_refused(proof, error):
    order = order_at(S.PICKED_UP)
    with pytest.raises(error):
        step(order, S.DELIVERED, lat=DROP[0], lon=DROP[1], **proof)
    order.refresh_from_db()
    assert order.status == S.PICKED_UP


def test_delivered_far_from_the_drop_is_refused():
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.TooFarFromDrop, match="m from the drop"):
        step(order, S.DELIVERED, otp=order.delivery_otp, lat=DROP[0] + 0.01, lon=DROP[1])  # ~1.1 km


def test_without_a_position_the_riders_last_known_one_decides(settings):
    from fleet.services import Point, location_points_record

    order = order_at(S.PICKED_UP)
    location_points_record(
        rider_id=order.rider_id, points=[Point(timezone.now() - timedelta(seconds=30), DROP[0] + 0.01, DROP[1])]
    )
    with pytest.raises(services.TooFarFromDrop):
        step(order, S.DELIVERED, otp=order.delivery_otp)
    location_points_record(rider_id=order.rider_id, points=[Point(timezone.now() - timedelta(seconds=5), *DROP)])
    assert step(order, S.DELIVERED, otp=order.delivery_otp).status == S.DELIVERED


def test_without_any_known_position_a_delivery_is_refused():
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.TooFarFromDrop, match="No position"):
        step(order, S.DELIVERED, otp=order.delivery_otp)


def test_delivered_with_a_photo_taken_during_the_trip_stores_it_privately():
    order = order_at(S.PICKED_UP)
    taken = timezone.localtime() - timedelta(minutes=2)
    step(order, S.DELIVERED, photo=jpeg(taken_at=taken.strftime("%Y:%m:%d %H:%M:%S")), lat=DROP[0], lon=DROP[1])
    order.refresh_from_db()
    assert order.proof_method == ProofMethod.PHOTO
    assert order.proof_photo.name.startswith(f"proof/{order.pk}/")
    assert order.proof_photo.read(3) == b"\xff\xd8\xff"


def test_a_photo_is_stored_under_the_extension_of_its_bytes_not_its_name():
    order = order_at(S.PICKED_UP)
    photo = jpeg()
    photo.name = "door.html"
    step(order, S.DELIVERED, photo=photo, lat=DROP[0], lon=DROP[1])
    order.refresh_from_db()
    assert order.proof_photo.name.endswith(".jpg")


def test_a_wrong_otp_is_refused_even_with_a_photo():
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.WrongOtp):
        step(
            order,
            S.DELIVERED,
            photo=jpeg(),
            otp="0000" if order.delivery_otp != "0000" else "1111",
            lat=DROP[0],
            lon=DROP[1],
        )


def test_an_oversize_photo_is_refused_for_its_size_before_the_position_is_judged(settings):
    settings.ORDER_PROOF_PHOTO_MAX_BYTES = 100
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.PhotoTooLarge):
        step(order, S.DELIVERED, photo=jpeg(), lat=DROP[0] + 0.05, lon=DROP[1])


def test_a_photo_without_a_timestamp_is_taken_on_its_own():
    order = order_at(S.PICKED_UP)
    assert step(order, S.DELIVERED, photo=jpeg(), lat=DROP[0], lon=DROP[1]).status == S.DELIVERED


def test_a_photo_taken_before_the_trip_is_refused():
    order = order_at(S.PICKED_UP)
    yesterday = timezone.localtime() - timedelta(days=1)
    with pytest.raises(services.PhotoOutsideTrip):
        step(order, S.DELIVERED, photo=jpeg(taken_at=yesterday.strftime("%Y:%m:%d %H:%M:%S")), lat=DROP[0], lon=DROP[1])


def test_an_oversize_photo_is_refused(settings):
    settings.ORDER_PROOF_PHOTO_MAX_BYTES = 100
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.PhotoTooLarge):
        step(order, S.DELIVERED, photo=jpeg(), lat=DROP[0], lon=DROP[1])


def test_a_file_that_is_no_image_is_refused():
    order = order_at(S.PICKED_UP)
    fake = SimpleUploadedFile("door.jpg", b"MZ\x90\x00 not a photo", content_type="image/jpeg")
    with pytest.raises(services.UnsupportedFile):
        step(order, S.DELIVERED, photo=fake, lat=DROP[0], lon=DROP[1])


def test_failed_needs_a_known_reason_code():
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.ReasonRequired):
        step(order, S.FAILED, reason="bored")
    order = step(order, S.FAILED, reason="CUSTOMER_UNAVAILABLE", note="rang twice")
    order.refresh_from_db()
    assert (order.status, order.failure_reason) == (S.FAILED, "CUSTOMER_UNAVAILABLE")
    assert order.closed_at is not None
    assert order.events.get().note == "rang twice"


# --- cancel and rating -----------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [S.CREATED, S.ASSIGNED, S.ACCEPTED])
def test_cancel_before_pickup_withdraws_a_pending_offer(start, partner):
    order = order_at(start)
    offer = pending_offer(order) if start == S.ASSIGNED else None
    services.order_cancel(order_id=order.pk, actor=partner, reason="customer changed their mind")
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (S.CANCELLED, "customer changed their mind")
    if offer is not None:
        offer.refresh_from_db()
        assert offer.status == OfferStatus.WITHDRAWN


def test_cancel_after_pickup_is_illegal_and_a_reason_is_required(partner):
    order = order_at(S.PICKED_UP)
    with pytest.raises(services.IllegalTransition, match="PICKED_UP"):
        services.order_cancel(order_id=order.pk, actor=partner, reason="too late")
    with pytest.raises(services.ReasonRequired):
        services.order_cancel(order_id=order_at(S.CREATED).pk, actor=partner, reason="  ")


def test_a_delivered_order_is_rated_once(partner):
    order = order_at(S.DELIVERED)
    services.order_rate(order_id=order.pk, actor=partner, stars=5, comment=" quick and polite ")
    rating = Rating.objects.get()
    assert (rating.rider_id, rating.stars, rating.comment, rating.rated_by) == (
        order.rider_id,
        5,
        "quick and polite",
        partner,
    )
    with pytest.raises(services.AlreadyRated):
        services.order_rate(order_id=order.pk, actor=partner, stars=1)
    assert Rating.objects.count() == 1


def test_an_order_not_delivered_cannot_be_rated(partner):
    with pytest.raises(services.NotDelivered):
        services.order_rate(order_id=order_at(S.PICKED_UP).pk, actor=partner, stars=4)


# --- races -------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transitions_of_one_order_never_both_succeed():
    """A cancel and a pickup race on one accepted order: the row lock orders them, the loser sees the
    winner's status and is refused."""
    order = order_at(S.ACCEPTED)
    partner = UserFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(action) -> None:
        try:
            barrier.wait()
            action()
            outcomes.append("ok")
        except services.IllegalTransition:
            outcomes.append("illegal")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda: step(order, S.PICKED_UP),)),
        threading.Thread(
            target=run, args=(lambda: services.order_cancel(order_id=order.pk, actor=partner, reason="r"),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["illegal", "ok"]
    order.refresh_from_db()
    assert order.status in (S.PICKED_UP, S.CANCELLED)
    assert order.events.count() == 1


# --- what goes out after commit --------------------------------------------------------------------------


def test_a_transition_reaches_dispatchers_the_tracking_page_and_both_riders_after_commit(
    django_capture_on_commit_callbacks, listen
):
    from config.realtime import dispatch_group, order_track_group, rider_group

    order = order_at(S.ACCEPTED)
    old_rider, new_rider = order.rider, RiderFactory(city=order.city)
    groups = {
        "dispatch": dispatch_group(order.city.code),
        "track": order_track_group(order.pk),
        "old": rider_group(old_rider.pk),
        "new": rider_group(new_rider.pk),
    }
    listener = listen(*groups.values())

    with django_capture_on_commit_callbacks(execute=True):
        locked = Order.objects.select_for_update().get(pk=order.pk)
        services.transition_apply(locked, S.ASSIGNED, now=timezone.now(), rider_id=new_rider.pk)
    messages = {name: listener.next(group, timeout=5) for name, group in groups.items()}

    for message in messages.values():
        assert message["event"] == "order.changed"
        assert message["payload"]["order_id"] == order.pk
        assert message["payload"]["status"] == S.ASSIGNED
        assert message["payload"]["rider_id"] == new_rider.pk
