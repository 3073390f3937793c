"""The staff roles exist after migrate with their permissions; what each role can and cannot reach in admin."""

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from access.roles import DISPATCHER, OPS, codenames, roles, sync_roles
from tests.riders.factories import KycDocumentFactory, RiderFactory, UserFactory
from tests.wallet.factories import earn
from wallet import services as wallet_services
from wallet.models import WithdrawalRequest, WithdrawalStatus

pytestmark = pytest.mark.django_db


def member(role: str) -> Client:
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_every_role_exists_after_migrate_with_the_permissions_code_lists():
    for name, grants in roles().items():
        have = set(Group.objects.get(name=name).permissions.values_list("content_type__app_label", "codename"))
        assert codenames(grants) <= have, name


def test_a_sync_adds_what_is_missing_and_keeps_what_ops_granted_on_top():
    dispatcher = Group.objects.get(name=DISPATCHER)
    extra = Permission.objects.get(codename="view_supportticket")
    dispatcher.permissions.add(extra)
    dispatcher.permissions.remove(Permission.objects.get(codename="view_order"))

    assert sync_roles() == 1

    assert dispatcher.permissions.filter(pk=extra.pk).exists()
    assert dispatcher.permissions.filter(codename="view_order").exists()


def test_a_dispatcher_cannot_fetch_a_kyc_file_nor_see_the_riders_documents():
    document = KycDocumentFactory()
    dispatcher = member(DISPATCHER)

    # Refused as if the file did not exist: the answer says nothing of which documents a rider has.
    assert dispatcher.get(reverse("admin:riders_kycdocument_file", args=[document.pk])).status_code == 404
    assert dispatcher.get(reverse("admin:riders_kycdocument_changelist")).status_code == 403
    rider_page = dispatcher.get(reverse("admin:riders_rider_change", args=[document.rider_id]))
    assert rider_page.status_code == 200
    assert reverse("admin:riders_kycdocument_file", args=[document.pk]) not in rider_page.content.decode()


def test_ops_open_kyc_files():
    document = KycDocumentFactory()
    response = member(OPS).get(reverse("admin:riders_kycdocument_file", args=[document.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 test document"


@pytest.mark.parametrize("role", [OPS, DISPATCHER])
def test_only_finance_approves_payouts(role):
    rider = RiderFactory()
    earn(rider.pk, 500_00)
    withdrawal = wallet_services.withdrawal_request(
        rider_id=rider.pk, amount_paise=500_00, idempotency_key="k1"
    ).withdrawal
    changelist = reverse("admin:wallet_withdrawalrequest_changelist")
    data = {
        "action": "approve_withdrawals",
        ACTION_CHECKBOX_NAME: [withdrawal.pk],
        "apply": "1",
        "payout_reference": "NEFT-1",
    }

    member(role).post(changelist, data)
    assert WithdrawalRequest.objects.get().status == WithdrawalStatus.REQUESTED

    paid = member(settings.FINANCE_GROUP).post(changelist, data, follow=True)
    assert "1 paid" in paid.content.decode()
    assert WithdrawalRequest.objects.get().status == WithdrawalStatus.PAID
