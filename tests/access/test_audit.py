"""Admin actions on riders, KYC and payouts are in the audit log: who, what, when, each field before and after."""

import pytest
from auditlog.models import LogEntry
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from riders.models import Rider
from tests.riders.factories import KycDocumentFactory, RiderFactory
from tests.wallet.factories import FinanceUserFactory, earn
from wallet import services as wallet_services
from wallet.models import WithdrawalRequest

pytestmark = pytest.mark.django_db


def entries_for(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).order_by("timestamp"))


def test_approving_kyc_in_admin_records_the_reviewer_and_the_status_before_and_after(staff_client, admin_user):
    rider = RiderFactory()
    KycDocumentFactory(rider=rider)

    staff_client.post(
        reverse("admin:riders_rider_changelist"), {"action": "approve_kyc", ACTION_CHECKBOX_NAME: [rider.pk]}
    )

    entry = entries_for(rider)[-1]
    assert entry.actor == admin_user
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.changes_dict["kyc_status"] == ["PENDING", "APPROVED"]
    assert entry.timestamp is not None


def test_suspending_records_the_reason(staff_client, admin_user):
    rider = RiderFactory()
    staff_client.post(
        reverse("admin:riders_rider_changelist"),
        {"action": "suspend_riders", ACTION_CHECKBOX_NAME: [rider.pk], "apply": "1", "reason": "Fake documents"},
    )
    rider.refresh_from_db()
    assert rider.status == "SUSPENDED"
    changes = entries_for(rider)[-1].changes_dict
    assert changes["status"] == ["ACTIVE", "SUSPENDED"]
    assert changes["suspension_reason"] == ["", "Fake documents"]


def test_editing_a_rider_in_the_change_form_is_recorded(staff_client, admin_user):
    rider = RiderFactory(name="Old Name")
    url = reverse("admin:riders_rider_change", args=[rider.pk])
    page = staff_client.get(url)
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"name": "New Name", "city": rider.city_id, "user": rider.user_id})
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Rider.objects.get(pk=rider.pk).name == "New Name"
    entry = entries_for(rider)[-1]
    assert (entry.actor, entry.changes_dict["name"]) == (admin_user, ["Old Name", "New Name"])


def test_a_payout_approved_in_admin_is_recorded_with_the_approver():
    rider = RiderFactory()
    earn(rider.pk, 500_00)
    withdrawal = wallet_services.withdrawal_request(
        rider_id=rider.pk, amount_paise=500_00, idempotency_key="k"
    ).withdrawal
    finance = FinanceUserFactory()
    client = Client()
    client.force_login(finance)

    client.post(
        reverse("admin:wallet_withdrawalrequest_changelist"),
        {
            "action": "approve_withdrawals",
            ACTION_CHECKBOX_NAME: [withdrawal.pk],
            "apply": "1",
            "payout_reference": "NEFT-9",
        },
    )

    withdrawal = WithdrawalRequest.objects.get()
    entry = entries_for(withdrawal)[-1]
    assert entry.actor == finance
    assert entry.changes_dict["status"][0] == "REQUESTED"
    assert entry.changes_dict["status"][1] == withdrawal.status == "PAID"
    assert entry.changes_dict["payout_reference"] == ["", "NEFT-9"]


def test_the_kyc_document_number_is_masked():
    document = KycDocumentFactory(number="ABCD1234567")
    entry = entries_for(document)[-1]
    assert entry.action == LogEntry.Action.CREATE
    assert "ABCD1234567" not in str(entry.changes_dict)
