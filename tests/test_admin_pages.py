"""Ops staff live in the admin: every page loads, and list pages cost the same queries for any row count."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from django_celery_results.models import GroupResult, TaskResult
from rest_framework.authtoken.models import Token

from orders.models import OrderEvent, OrderStatus
from riders.models import DutyLog
from tests.fleet.factories import CityFactory, RiderDayDistanceFactory, VehicleFactory
from tests.orders.factories import DeliveredOrderFactory, OrderFactory
from tests.riders.factories import (
    EmergencyAlertFactory,
    KycDocumentFactory,
    RatingFactory,
    RiderFactory,
    SupportTicketFactory,
    UserFactory,
)
from tests.wallet.factories import WithdrawalRequestFactory
from wallet.models import EntryType
from wallet.services import ledger_entry_post

pytestmark = pytest.mark.django_db

OUR_APPS = {"fleet", "riders", "orders", "wallet"}
_third_party_rows = 0


def add_rows(count: int) -> None:
    """``count`` rows (at least) of every model our admin lists, with their relations filled."""
    for _ in range(count):
        city = CityFactory()
        vehicle = VehicleFactory(city=city)
        rider = RiderFactory(city=city, vehicle=vehicle)
        KycDocumentFactory(rider=rider)
        DutyLog.objects.create(rider=rider, started_at=timezone.now())
        RiderDayDistanceFactory(rider=rider)
        order = OrderFactory(city=city)
        OrderEvent.objects.create(order=order, to_status=OrderStatus.CREATED)
        delivered = DeliveredOrderFactory(city=city, rider=rider)
        RatingFactory(order=delivered, rider=rider)
        SupportTicketFactory(rider=rider, order=delivered)
        EmergencyAlertFactory(rider=rider)
        posting = ledger_entry_post(
            rider_id=rider.pk,
            entry_type=EntryType.EARNING,
            amount_paise=4500,
            idempotency_key=f"earning:{delivered.pk}",
            order_id=delivered.pk,
        )
        WithdrawalRequestFactory(rider=rider, hold_entry_id=posting.entry.pk)
        add_third_party_rows()


def add_third_party_rows() -> None:
    """A row for each model of the libraries whose admins ops use: users, tokens, Celery schedules and results."""
    global _third_party_rows
    _third_party_rows += 1
    n = _third_party_rows
    group = Group.objects.create(name=f"ops-{n}")
    user = UserFactory(username=f"staff-{n}", is_staff=True)
    user.groups.add(group)
    Token.objects.create(user=user)
    interval = IntervalSchedule.objects.create(every=n, period=IntervalSchedule.MINUTES)
    crontab = CrontabSchedule.objects.create(minute=str(n % 60))
    SolarSchedule.objects.create(event="sunrise", latitude=12.97, longitude=77.59 + n / 100)
    clocked = ClockedSchedule.objects.create(clocked_time=timezone.now())
    PeriodicTask.objects.create(name=f"every-{n}", task="fleet.noop", interval=interval)
    PeriodicTask.objects.create(name=f"cron-{n}", task="fleet.noop", crontab=crontab)
    PeriodicTask.objects.create(name=f"clocked-{n}", task="fleet.noop", clocked=clocked, one_off=True)
    TaskResult.objects.create(
        task_id=f"task-{n}", task_name="fleet.noop", status="SUCCESS", periodic_task_name=f"every-{n}"
    )
    GroupResult.objects.create(group_id=f"group-{n}")


def our_models():
    return sorted(
        (model for model in admin.site._registry if model._meta.app_label in OUR_APPS),
        key=lambda m: m._meta.label,
    )


def all_models():
    return sorted(admin.site._registry, key=lambda m: m._meta.label)


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(queries)


def test_every_model_but_the_location_log_has_an_admin():
    registered = {m._meta.label for m in admin.site._registry}
    expected = {
        "fleet.City",
        "fleet.Vehicle",
        "fleet.RiderDayDistance",
        "riders.Rider",
        "riders.KycDocument",
        "riders.DutyLog",
        "riders.Rating",
        "riders.SupportTicket",
        "riders.EmergencyAlert",
        "orders.Order",
        "orders.OrderEvent",
        "wallet.LedgerEntry",
        "wallet.LedgerKey",
        "wallet.Balance",
        "wallet.WithdrawalRequest",
    }
    assert expected <= registered
    assert "fleet.LocationLog" not in registered


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m._meta.label)
def test_changelist_queries_do_not_grow_with_rows(staff_client, model):
    add_rows(2)
    few = queries_for(staff_client, changelist(model))
    add_rows(5)
    many = queries_for(staff_client, changelist(model))
    assert many == few, f"{model._meta.label}: {few} queries for a few rows, {many} for more"


@pytest.mark.parametrize("model", our_models(), ids=lambda m: m._meta.label)
def test_csv_export_queries_do_not_grow_with_rows(staff_client, model):
    url = changelist(model) + "export.csv"
    add_rows(2)
    few = queries_for(staff_client, url)
    add_rows(5)
    assert queries_for(staff_client, url) == few


@pytest.mark.parametrize("model", our_models(), ids=lambda m: m._meta.label)
def test_change_page_loads(staff_client, model):
    add_rows(1)
    obj = model.objects.order_by("pk").first()
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
    response = staff_client.get(url)
    assert response.status_code == 200


def test_every_registered_changelist_loads(staff_client):
    add_rows(1)
    for model in admin.site._registry:
        response = staff_client.get(changelist(model))
        assert response.status_code == 200, model._meta.label


def test_changelist_search_and_filters(staff_client):
    rider = RiderFactory(name="Ravi Kumar", mobile="+919811111111")
    RiderFactory(name="Someone Else")
    url = changelist(type(rider))
    assert "Ravi Kumar" in staff_client.get(url, {"q": "9811111111"}).content.decode()
    body = staff_client.get(url, {"q": "Ravi", "kyc_status__exact": "PENDING", "city__id__exact": rider.city_id})
    assert "Ravi Kumar" in body.content.decode()
    assert "Someone Else" not in body.content.decode()


def test_csv_export_follows_the_current_filters(staff_client):
    wanted = OrderFactory(external_ref="WANTED-1")
    OrderFactory(external_ref="OTHER-1", city=CityFactory(code="ZZZ"))
    response = staff_client.get(changelist(type(wanted)) + "export.csv", {"city__id__exact": wanted.city_id})
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "WANTED-1" in body
    assert "OTHER-1" not in body
    assert body.splitlines()[0].startswith("id,external_ref,")


def test_csv_export_defuses_spreadsheet_formulas(staff_client):
    rider = RiderFactory(name='=HYPERLINK("http://evil")')
    response = staff_client.get(changelist(type(rider)) + "export.csv")
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_the_ledger_is_read_only_in_admin(staff_client):
    add_rows(1)
    from wallet.models import LedgerEntry

    entry = LedgerEntry.objects.first()
    assert staff_client.get(reverse("admin:wallet_ledgerentry_add")).status_code == 403
    assert staff_client.get(reverse("admin:wallet_ledgerentry_delete", args=[entry.pk])).status_code == 403
    change = staff_client.get(reverse("admin:wallet_ledgerentry_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in change


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(changelist(type(RiderFactory())))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
