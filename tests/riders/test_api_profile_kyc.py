"""A rider reads and edits their own profile, uploads KYC documents checked by their bytes, sees their vehicle."""

import io
import struct
import zlib
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from riders.models import KycDocument, KycDocumentType, KycStatus, ReviewStatus, Rider
from tests.fleet.factories import VehicleFactory
from tests.riders.factories import KycDocumentFactory, RatingFactory, RiderFactory

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/driver/profile/"
DOCUMENTS = "/api/v1/driver/kyc-documents/"
VEHICLE = "/api/v1/driver/vehicle/"
FIVE_MB = 5 * 1024 * 1024


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def client_of(rider: Rider) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rider.user).key}")
    return client


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color=(200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def pdf_bytes(size: int = 0) -> bytes:
    head = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
    return head + b"0" * max(0, size - len(head))


def upload(client: APIClient, content: bytes, *, name: str, doc_type: str = "PAN", content_type: str = "image/jpeg"):
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post(DOCUMENTS, {"doc_type": doc_type, "file": file, "number": "ABCDE1234F"}, format="multipart")


@pytest.fixture
def rider() -> Rider:
    return RiderFactory()


@pytest.fixture
def client(rider) -> APIClient:
    return client_of(rider)


# --- profile -------------------------------------------------------------------------------------


def test_profile_shows_the_riders_own_kyc_duty_city_and_vehicle(client, rider):
    rider.vehicle = VehicleFactory(city=rider.city)
    rider.save()
    body = client.get(PROFILE).json()

    assert body["id"] == rider.pk
    assert body["mobile"] == rider.mobile
    assert body["kyc_status"] == "PENDING"
    assert body["duty_status"] == "OFF"
    assert body["city"] == {"code": rider.city.code, "name": rider.city.name}
    assert body["vehicle"]["registration"] == rider.vehicle.registration


def test_profile_average_rating_is_the_mean_of_the_riders_rating_rows(client, rider):
    for stars in (5, 4, 4):
        RatingFactory(order__rider=rider, order__city=rider.city, rider=rider, stars=stars)
    RatingFactory(stars=1)  # another rider's rating counts for nobody else

    body = client.get(PROFILE).json()
    assert body["average_rating"] == 4.33
    assert body["rating_count"] == 3


def test_profile_of_an_unrated_rider_has_no_average_rating(client):
    body = client.get(PROFILE).json()
    assert body["average_rating"] is None
    assert body["rating_count"] == 0


def test_profile_read_costs_the_same_few_queries_with_many_ratings(client, rider, django_assert_num_queries):
    for _ in range(5):
        RatingFactory(order__rider=rider, order__city=rider.city, rider=rider)
    with django_assert_num_queries(2):  # token with user, rider and city; the profile with vehicle and ratings
        assert client.get(PROFILE).status_code == 200


def test_profile_patch_changes_name_language_and_emergency_contact(client, rider):
    changes = {
        "name": "Asha R.",
        "language": "kn",
        "emergency_contact_name": "Ravi",
        "emergency_contact_mobile": "98450 12345",
    }
    response = client.patch(PROFILE, changes, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["emergency_contact_mobile"] == "+919845012345"
    rider.refresh_from_db()
    assert (rider.name, rider.language, rider.emergency_contact_name, rider.emergency_contact_mobile) == (
        "Asha R.",
        "kn",
        "Ravi",
        "+919845012345",
    )


def test_profile_patch_of_kyc_status_is_400_and_changes_nothing(client, rider):
    response = client.patch(PROFILE, {"name": "Someone Else", "kyc_status": "APPROVED"}, format="json")

    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"kyc_status"}
    rider.refresh_from_db()
    assert rider.kyc_status == KycStatus.PENDING
    assert rider.name != "Someone Else"


@pytest.mark.parametrize("field", ["mobile", "status", "duty_status", "city", "vehicle", "id"])
def test_profile_patch_of_any_field_but_the_editable_ones_is_400(client, rider, field):
    error = assert_error(client.patch(PROFILE, {field: "X"}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {field}
    assert Rider.objects.get(pk=rider.pk).mobile == rider.mobile


def test_profile_patch_with_an_invalid_emergency_mobile_is_400_on_that_field(client):
    error = assert_error(client.patch(PROFILE, {"emergency_contact_mobile": "12"}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"emergency_contact_mobile"}


def test_profile_patch_with_non_ascii_digits_in_the_emergency_mobile_is_400_not_500(client):
    client.raise_request_exception = False
    arabic_indic = "+9198" + "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"
    response = client.patch(PROFILE, {"emergency_contact_mobile": arabic_indic}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"emergency_contact_mobile"}


def test_profile_patch_can_clear_the_emergency_contact(client, rider):
    rider.emergency_contact_name, rider.emergency_contact_mobile = "Ravi", "+919845012345"
    rider.save()
    response = client.patch(PROFILE, {"emergency_contact_name": "", "emergency_contact_mobile": ""}, format="json")
    assert response.status_code == 200, response.content
    rider.refresh_from_db()
    assert (rider.emergency_contact_name, rider.emergency_contact_mobile) == ("", "")


def test_profile_patch_with_a_blank_name_is_400(client):
    error = assert_error(client.patch(PROFILE, {"name": ""}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"name"}


# --- KYC documents -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "expected_type"),
    [
        (image_bytes("PNG"), "pan.png", "image/png"),
        (image_bytes("JPEG"), "pan.jpeg", "image/jpeg"),
        (image_bytes("WEBP"), "pan.webp", "image/webp"),
        (pdf_bytes(), "pan.pdf", "application/pdf"),
    ],
    ids=["png", "jpeg", "webp", "pdf"],
)
def test_kyc_upload_of_an_image_or_pdf_is_stored_privately_pending_review(client, rider, content, name, expected_type):
    response = upload(client, content, name=name, content_type="application/octet-stream")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["content_type"] == expected_type
    assert body["size_bytes"] == len(content)
    assert "file" not in body  # no URL to a private document, ever
    document = KycDocument.objects.get(pk=body["id"], rider=rider)
    assert document.file.name.startswith(f"kyc/{rider.pk}/")
    with default_storage.open(document.file.name) as stored:
        assert stored.read() == content


def test_kyc_upload_judges_the_type_by_the_bytes_not_the_name(client):
    response = upload(client, pdf_bytes(), name="selfie.jpg", content_type="image/jpeg")
    assert response.status_code == 201, response.content
    assert response.json()["content_type"] == "application/pdf"


@pytest.mark.parametrize(
    "content",
    [
        b"just some text pretending to be a photo\n",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64,
        b"#!/bin/sh\nrm -rf /\n",
        image_bytes("PNG")[:40],  # a PNG signature with the picture cut off
    ],
    ids=["text", "windows-exe", "script", "truncated-png"],
)
def test_kyc_upload_of_a_non_image_named_jpg_is_415_unsupported_file_type(client, content):
    assert_error(upload(client, content, name="licence.jpg"), 415, "unsupported_file_type")
    assert not KycDocument.objects.exists()


def test_kyc_upload_of_a_tiny_png_claiming_200_megapixels_is_413_image_too_large(client):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20_000, 10_000, 8, 2, 0, 0, 0)  # 20000 x 10000 RGB, 8 bits a channel
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    assert_error(upload(client, bomb, name="pan.png"), 413, "image_too_large")
    assert not KycDocument.objects.exists()


@override_settings(KYC_MAX_UPLOAD_BYTES=1024)
def test_kyc_upload_over_the_size_limit_is_413_file_too_large(client):
    assert upload(client, pdf_bytes(1024), name="rc.pdf", doc_type="RC").status_code == 201
    assert_error(upload(client, pdf_bytes(1025), name="pan.pdf"), 413, "file_too_large")
    assert KycDocument.objects.count() == 1


def test_kyc_upload_just_over_five_megabytes_is_413_file_too_large(client):
    assert_error(upload(client, pdf_bytes(FIVE_MB + 1), name="pan.pdf"), 413, "file_too_large")
    assert not KycDocument.objects.exists()


def test_kyc_upload_of_exactly_five_megabytes_is_accepted(client):
    response = upload(client, pdf_bytes(FIVE_MB), name="pan.pdf")
    assert response.status_code == 201, response.content
    assert response.json()["size_bytes"] == FIVE_MB


def test_kyc_upload_of_a_type_already_pending_is_409_document_exists(client, rider):
    KycDocumentFactory(rider=rider, doc_type=KycDocumentType.PAN)
    assert_error(upload(client, image_bytes("PNG"), name="pan.png"), 409, "document_exists")
    assert KycDocument.objects.filter(rider=rider).count() == 1


def test_kyc_upload_of_a_type_already_approved_is_409_document_exists(client, rider):
    KycDocumentFactory(rider=rider, doc_type="DL", status=ReviewStatus.APPROVED, reviewed_at=timezone.now())
    assert_error(upload(client, image_bytes("PNG"), name="dl.png", doc_type="DL"), 409, "document_exists")


def test_kyc_reupload_of_a_rejected_type_replaces_it_and_returns_the_rider_to_pending(
    client, rider, django_capture_on_commit_callbacks
):
    Rider.objects.filter(pk=rider.pk).update(kyc_status=KycStatus.REJECTED, kyc_rejection_reason="Blurry PAN")
    rejected = KycDocumentFactory(
        rider=rider, status=ReviewStatus.REJECTED, rejection_reason="Blurry", reviewed_at=timezone.now()
    )
    old_file = rejected.file.name
    assert default_storage.exists(old_file)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, image_bytes("PNG"), name="pan.png")

    assert response.status_code == 201, response.content
    assert list(KycDocument.objects.filter(rider=rider).values_list("pk", "status")) == [
        (response.json()["id"], ReviewStatus.PENDING)
    ]
    assert not default_storage.exists(old_file)  # the rejected file is deleted once the new one is committed
    rider.refresh_from_db()
    assert rider.kyc_status == KycStatus.PENDING
    assert rider.kyc_rejection_reason == ""


def test_kyc_upload_of_an_unknown_doc_type_is_400_on_doc_type(client):
    error = assert_error(upload(client, image_bytes("PNG"), name="x.png", doc_type="PASSPORTX"), 400, "invalid_input")
    assert set(error["fields"]) == {"doc_type"}


def test_kyc_upload_without_a_file_is_400_on_file(client):
    error = assert_error(client.post(DOCUMENTS, {"doc_type": "PAN"}, format="multipart"), 400, "invalid_input")
    assert set(error["fields"]) == {"file"}


def test_kyc_upload_of_an_empty_file_is_400_on_file(client):
    error = assert_error(upload(client, b"", name="pan.png"), 400, "invalid_input")
    assert set(error["fields"]) == {"file"}


def test_kyc_upload_sent_as_json_is_400_asking_for_the_file(client):
    response = client.post(DOCUMENTS, {"doc_type": "PAN", "file": "aGVsbG8="}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"file"}


def test_kyc_list_shows_only_the_riders_own_documents_newest_first(client, rider):
    older = KycDocumentFactory(rider=rider, doc_type="PAN")
    newer = KycDocumentFactory(rider=rider, doc_type="DL")
    KycDocument.objects.filter(pk=older.pk).update(uploaded_at=timezone.now() - timedelta(days=1))
    KycDocumentFactory(doc_type="AADHAAR")  # someone else's

    response = client.get(DOCUMENTS)

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [newer.pk, older.pk]
    assert {d["status"] for d in response.json()["results"]} == {"PENDING"}


def test_kyc_list_costs_the_same_queries_for_one_or_six_documents(client, rider, django_assert_num_queries):
    for doc_type in KycDocumentType.values:
        KycDocumentFactory(rider=rider, doc_type=doc_type)
    with django_assert_num_queries(2):  # token with user, rider and city; the documents
        response = client.get(DOCUMENTS)
    assert len(response.json()["results"]) == len(KycDocumentType.values)


def test_kyc_document_detail_of_the_riders_own_document_is_200(client, rider):
    document = KycDocumentFactory(rider=rider)
    response = client.get(f"{DOCUMENTS}{document.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == document.pk
    assert response.json()["doc_type"] == "PAN"


def test_kyc_document_detail_of_another_riders_document_is_404_not_403(client):
    others = KycDocumentFactory()
    assert_error(client.get(f"{DOCUMENTS}{others.pk}/"), 404, "not_found")


def test_kyc_document_detail_of_a_missing_id_is_404_like_another_riders(client):
    assert_error(client.get(f"{DOCUMENTS}999999999/"), 404, "not_found")


# --- vehicle -------------------------------------------------------------------------------------


def test_vehicle_is_the_riders_assigned_vehicle(client, rider):
    vehicle = VehicleFactory(city=rider.city)
    VehicleFactory(city=rider.city)  # not theirs
    Rider.objects.filter(pk=rider.pk).update(vehicle=vehicle)

    response = client.get(VEHICLE)

    assert response.status_code == 200
    assert response.json() == {
        "id": vehicle.pk,
        "kind": vehicle.kind,
        "registration": vehicle.registration,
        "order_capacity": vehicle.order_capacity,
        "load_capacity_kg": vehicle.load_capacity_kg,
    }


def test_vehicle_when_none_is_assigned_is_404_no_vehicle(client):
    assert_error(client.get(VEHICLE), 404, "no_vehicle")
