"""Ops approve, reject and suspend riders from the rider list; KYC files reach staff only."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fleet.services import Point, location_points_record
from riders.models import DutyLog, DutyStatus, KycStatus, ReviewStatus, RiderStatus
from tests.riders.factories import DutyLogFactory, KycDocumentFactory, RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:riders_rider_changelist")


def _act(client, action, riders, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in riders], **extra}
    return client.post(CHANGELIST, data, follow=True)


def test_approve_kyc_approves_riders_and_their_pending_documents(staff_client, admin_user):
    rider = RiderFactory()
    document = KycDocumentFactory(rider=rider)
    response = _act(staff_client, "approve_kyc", [rider])
    assert "Approved the KYC of 1 rider(s)." in response.content.decode()
    rider.refresh_from_db()
    document.refresh_from_db()
    assert rider.kyc_status == KycStatus.APPROVED
    assert rider.kyc_reviewed_at is not None
    assert document.status == ReviewStatus.APPROVED
    assert document.reviewed_by == admin_user


def test_reject_kyc_asks_for_a_reason_first(staff_client):
    rider = RiderFactory()
    page = _act(staff_client, "reject_kyc", [rider])
    assert 'name="reason"' in page.content.decode()
    rider.refresh_from_db()
    assert rider.kyc_status == KycStatus.PENDING


def test_reject_kyc_with_reason_rejects_documents_and_ends_duty(staff_client):
    rider = RiderFactory(kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON)
    DutyLogFactory(rider=rider, started_at=timezone.now() - timedelta(hours=1))
    document = KycDocumentFactory(rider=rider)
    response = _act(staff_client, "reject_kyc", [rider], apply="1", reason="Licence photo unreadable")
    assert "Rejected the KYC of 1 rider(s)." in response.content.decode()
    rider.refresh_from_db()
    document.refresh_from_db()
    assert rider.kyc_status == KycStatus.REJECTED
    assert rider.kyc_rejection_reason == "Licence photo unreadable"
    assert rider.duty_status == DutyStatus.OFF
    assert document.status == ReviewStatus.REJECTED
    assert document.rejection_reason == "Licence photo unreadable"
    assert not DutyLog.objects.filter(rider=rider, ended_at__isnull=True).exists()


def test_a_blank_reason_changes_nothing(staff_client):
    rider = RiderFactory()
    _act(staff_client, "reject_kyc", [rider], apply="1", reason="   ")
    rider.refresh_from_db()
    assert rider.kyc_status == KycStatus.PENDING


def test_suspend_riders_with_reason(staff_client):
    riders = [RiderFactory(), RiderFactory(status=RiderStatus.OFFBOARDED)]
    response = _act(staff_client, "suspend_riders", riders, apply="1", reason="Repeated late deliveries")
    assert "Suspended 1 rider(s)." in response.content.decode()
    riders[0].refresh_from_db()
    assert riders[0].status == RiderStatus.SUSPENDED
    assert riders[0].suspension_reason == "Repeated late deliveries"


def test_staff_without_change_permission_cannot_approve(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_rider"))
    client.force_login(viewer)
    rider = RiderFactory()
    _act(client, "approve_kyc", [rider])
    rider.refresh_from_db()
    assert rider.kyc_status == KycStatus.PENDING


def test_kyc_file_is_streamed_to_staff_only(staff_client):
    document = KycDocumentFactory()
    url = reverse("admin:riders_kycdocument_file", args=[document.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 test document"
    assert "no-store" in response["Cache-Control"]
    assert Client().get(url).status_code == 302  # anonymous: to the login page


def test_rider_page_links_to_the_recent_track(staff_client):
    rider = RiderFactory()
    now = timezone.now()
    location_points_record(
        rider_id=rider.pk,
        points=[Point(recorded_at=now - timedelta(seconds=10 * i), lat=12.97 + i / 1000, lon=77.59) for i in range(5)],
    )
    page = staff_client.get(reverse("admin:riders_rider_change", args=[rider.pk])).content.decode()
    track_url = reverse("admin:riders_rider_track", args=[rider.pk])
    assert track_url in page
    track = staff_client.get(track_url)
    assert track.status_code == 200
    assert "5 points in the last 24 hours" in track.content.decode()
    assert "<polyline" in track.content.decode()
