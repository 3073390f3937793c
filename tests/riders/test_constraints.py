"""The database refuses riders, documents and duty logs that break the rules."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from riders.models import DutyStatus, KycDocumentType, KycStatus, ReviewStatus, RiderStatus
from tests.riders.factories import DutyLogFactory, KycDocumentFactory, RiderFactory

pytestmark = pytest.mark.django_db


def _refused(factory, **kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**kwargs)


def test_mobile_is_unique():
    RiderFactory(mobile="+919800000001")
    _refused(RiderFactory, mobile="+919800000001")


@pytest.mark.parametrize("mobile", ["9800000001", "+0919800000001", "+91-98000-00001", "+91"])
def test_mobile_must_be_e164(mobile):
    _refused(RiderFactory, mobile=mobile)


def test_only_an_active_approved_rider_can_be_on_duty():
    _refused(RiderFactory, duty_status=DutyStatus.ON, kyc_status=KycStatus.PENDING)
    _refused(RiderFactory, duty_status=DutyStatus.ON, kyc_status=KycStatus.APPROVED, status=RiderStatus.SUSPENDED)
    assert RiderFactory(duty_status=DutyStatus.ON, kyc_status=KycStatus.APPROVED).pk


def test_a_kyc_rejection_needs_a_reason():
    _refused(RiderFactory, kyc_status=KycStatus.REJECTED, kyc_rejection_reason="")


def test_a_rider_has_one_open_duty_log():
    rider = RiderFactory()
    DutyLogFactory(rider=rider)
    _refused(DutyLogFactory, rider=rider)


def test_a_duty_log_cannot_end_before_it_starts():
    now = timezone.now()
    _refused(DutyLogFactory, started_at=now, ended_at=now - timedelta(minutes=1), end_reason="MANUAL")


def test_one_live_document_per_type_but_re_upload_after_rejection():
    rider = RiderFactory()
    rejected = KycDocumentFactory(
        rider=rider,
        doc_type=KycDocumentType.PAN,
        status=ReviewStatus.REJECTED,
        rejection_reason="blurred",
        reviewed_at=timezone.now(),
    )
    live = KycDocumentFactory(rider=rider, doc_type=KycDocumentType.PAN)
    assert rejected.pk
    assert live.pk
    _refused(KycDocumentFactory, rider=rider, doc_type=KycDocumentType.PAN)


def test_kyc_files_get_unguessable_private_paths():
    document = KycDocumentFactory()
    assert document.file.name.startswith(f"kyc/{document.rider_id}/")
    assert "pan" not in document.file.name
    with pytest.raises(NotImplementedError):
        document.file.url  # noqa: B018
