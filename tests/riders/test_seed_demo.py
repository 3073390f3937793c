"""``manage.py seed_demo`` builds a demo world with every state in it, consistent, and only once."""

import io
import itertools
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Q, Sum

from fleet.models import City, LocationLog, Vehicle
from orders.models import ACTIVE_STATUSES, Order, OrderEvent, OrderStatus
from riders.demo import CITIES, DEMO_PASSWORD, RiderPlanner, rider_mobile, vehicle_registration
from riders.models import (
    DutyLog,
    DutyStatus,
    EmergencyAlert,
    KycDocument,
    KycStatus,
    Rating,
    Rider,
    RiderStatus,
    SupportTicket,
)
from wallet.models import Account, Balance, EntryType, LedgerEntry, WithdrawalRequest, WithdrawalStatus

pytestmark = pytest.mark.django_db

MODELS = (
    City,
    Vehicle,
    Rider,
    KycDocument,
    DutyLog,
    Order,
    OrderEvent,
    Rating,
    LedgerEntry,
    Balance,
    WithdrawalRequest,
    SupportTicket,
    EmergencyAlert,
    LocationLog,
)


@pytest.fixture(autouse=True)
def _private_files_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "config.storage.PrivateFileStorage", "OPTIONS": {"location": tmp_path}},
    }


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--riders", "12", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS} | {"User": get_user_model().objects.count()}


def test_seed_creates_riders_in_every_status_kyc_and_duty_state():
    seed()
    riders = Rider.objects.all()
    assert riders.count() == 12
    assert set(riders.values_list("status", flat=True)) == set(RiderStatus.values)
    assert set(riders.values_list("kyc_status", flat=True)) == set(KycStatus.values)
    assert set(riders.values_list("duty_status", flat=True)) == set(DutyStatus.values)
    assert set(City.objects.values_list("code", flat=True)) == {"BLR", "DEL", "MUM", "HYD"}
    assert not riders.filter(kyc_status=KycStatus.REJECTED, kyc_rejection_reason="").exists()


def test_seed_creates_orders_in_every_status_with_their_event_history():
    seed()
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    for order in Order.objects.prefetch_related("events"):
        events = list(order.events.order_by("occurred_at", "id"))
        assert (events[0].from_status, events[0].to_status) == ("", OrderStatus.CREATED)
        assert all(b.from_status == a.to_status for a, b in itertools.pairwise(events))
        assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(events))
        assert events[-1].to_status == order.status


def test_no_active_rider_carries_more_orders_than_the_vehicle_holds():
    seed()
    riders = Rider.objects.annotate(active=Count("orders", filter=Q(orders__status__in=ACTIVE_STATUSES)))
    assert riders.filter(active__gt=0).exists()
    for rider in riders.filter(active__gt=0).select_related("vehicle"):
        assert rider.duty_status == DutyStatus.ON
        assert rider.active <= rider.vehicle.order_capacity


def test_ledger_balances_equal_the_sum_of_entries():
    seed()
    assert LedgerEntry.objects.exists()
    for rider in Rider.objects.all():
        sums = LedgerEntry.objects.filter(rider=rider).aggregate(
            wallet=Sum("amount_paise", filter=Q(account=Account.WALLET), default=0),
            cod=Sum("amount_paise", filter=Q(account=Account.COD), default=0),
        )
        balance = Balance.objects.filter(rider=rider).first()
        assert (balance.wallet_paise if balance else 0) == sums["wallet"]
        assert (balance.cod_paise if balance else 0) == sums["cod"]
        assert sums["wallet"] >= 0


def test_delivered_orders_are_earned_and_cod_is_collected_once():
    seed()
    delivered = Order.objects.filter(status=OrderStatus.DELIVERED)
    for order in delivered:
        earning = LedgerEntry.objects.get(idempotency_key=f"earning:{order.pk}")
        assert (earning.entry_type, earning.amount_paise) == (EntryType.EARNING, order.delivery_fee_paise)
        cod = LedgerEntry.objects.filter(idempotency_key=f"cod:{order.pk}").first()
        if order.cod_amount_paise:
            assert (cod.account, cod.amount_paise) == (Account.COD, -order.cod_amount_paise)
        else:
            assert cod is None


def test_withdrawals_hold_money_and_rejected_ones_are_released_by_a_reversal():
    seed()
    statuses = set(WithdrawalRequest.objects.values_list("status", flat=True))
    assert {WithdrawalStatus.REQUESTED, WithdrawalStatus.PAID, WithdrawalStatus.REJECTED} <= statuses
    for request in WithdrawalRequest.objects.all():
        hold = LedgerEntry.objects.get(pk=request.hold_entry_id)
        assert (hold.entry_type, hold.amount_paise) == (EntryType.WITHDRAWAL, -request.amount_paise)
        if request.status == WithdrawalStatus.REJECTED:
            release = LedgerEntry.objects.get(pk=request.release_entry_id)
            assert (release.entry_type, release.reverses_id, release.amount_paise) == (
                EntryType.REVERSAL,
                hold.pk,
                request.amount_paise,
            )
            assert request.rejection_reason
        if request.status == WithdrawalStatus.PAID:
            assert request.payout_reference


def test_on_duty_riders_have_an_open_shift_and_a_recent_gps_trail():
    seed()
    on_duty = Rider.objects.filter(duty_status=DutyStatus.ON)
    assert on_duty.exists()
    for rider in on_duty:
        assert DutyLog.objects.get(rider=rider, ended_at__isnull=True)
        assert LocationLog.objects.filter(rider=rider).count() >= 100
    assert not LocationLog.objects.exclude(rider__duty_status=DutyStatus.ON).exists()
    assert not DutyLog.objects.filter(ended_at__isnull=True).exclude(rider__duty_status=DutyStatus.ON).exists()


def test_every_rider_has_a_login_and_a_few_know_the_demo_password():
    seed()
    for rider in Rider.objects.select_related("user"):
        assert rider.user.username == rider.mobile
    assert Rider.objects.get(mobile=rider_mobile(0)).user.check_password(DEMO_PASSWORD)
    assert not Rider.objects.get(mobile=rider_mobile(11)).user.has_usable_password()


def test_kyc_documents_are_stored_files_one_live_per_type():
    seed()
    docs = KycDocument.objects.all()
    assert docs.exists()
    doc = docs.first()
    with doc.file.open("rb") as handle:
        assert len(handle.read()) == doc.size_bytes > 0
    assert set(docs.values_list("status", flat=True)) == {"PENDING", "APPROVED", "REJECTED"}


def test_support_tickets_and_sos_alerts_come_in_several_states():
    seed()
    assert set(SupportTicket.objects.values_list("status", flat=True)) == {"OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED"}
    assert {"OPEN", "ACKNOWLEDGED"} <= set(EmergencyAlert.objects.values_list("status", flat=True))


def test_a_second_run_creates_nothing_new():
    seed("--quiet")
    before = counts()
    output = seed()
    assert counts() == before
    assert "nothing new created" in output


def test_a_bigger_second_run_adds_only_the_new_riders():
    seed("--quiet")
    out = io.StringIO()
    call_command("seed_demo", "--riders", "15", "--quiet", stdout=out)
    assert Rider.objects.count() == 15
    assert "3 riders" in out.getvalue()


def test_the_same_seed_plans_the_same_world():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    first = RiderPlanner(seed=7, now=now, orders_per_rider=5)
    second = RiderPlanner(seed=7, now=now, orders_per_rider=5)
    other = RiderPlanner(seed=8, now=now, orders_per_rider=5)
    assert [first.plan(i) for i in range(20)] == [second.plan(i) for i in range(20)]
    assert [first.plan(i).name for i in range(20)] != [other.plan(i).name for i in range(20)]


def test_registrations_are_unique_and_plate_shaped():
    plates = {vehicle_registration(CITIES[i % 4], i) for i in range(20_000)}
    assert len(plates) == 20_000
    assert all(len(p) == 10 and p.isupper() and p[-4:].isdigit() for p in plates)
