"""What every API endpoint promises: one error shape, rate limits, idempotent creates, response timing."""

import io
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from django.test.client import encode_multipart
from django_ratelimit.core import get_usage
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from riders.models import EmergencyAlert, KycDocument, KycStatus, Rider
from tests.fleet.factories import CityFactory
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"
PROFILE = "/api/v1/driver/profile/"
DOCUMENTS = "/api/v1/driver/kyc-documents/"
DUTY = "/api/v1/driver/duty/"
HOS = "/api/v1/driver/hos/"
EMERGENCY = "/api/v1/driver/emergency/"
PASSWORD = "kite-orbit-5521"
# A sign-in refused before any password hashing, so a burst of attempts stays fast.
GUESS = {"mobile": "no such mobile", "password": "guess"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def client_of(rider: Rider, token_key: str | None = None) -> APIClient:
    token = Token.objects.create(user=rider.user, key=token_key) if token_key else Token.objects.create(user=rider.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color=(0, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def rider() -> Rider:
    return RiderFactory(kyc_status=KycStatus.APPROVED)


@pytest.fixture
def client(rider) -> APIClient:
    return client_of(rider)


@pytest.fixture
def failing_disk(settings, tmp_path) -> Callable[[], None]:
    """Saving an upload raises OSError (as on a full or read-only disk) until the test calls what this returns."""
    working = settings.STORAGES["default"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the storage cannot make folders under a file")
    settings.STORAGES = {**settings.STORAGES, "default": {**working, "OPTIONS": {"location": blocker}}}

    def recover() -> None:
        settings.STORAGES = {**settings.STORAGES, "default": working}

    return recover


# --- the error shape for what DRF and Django refuse ----------------------------------------------


@pytest.mark.parametrize("body", [b'{"status": "ON"', b"{'status': 'ON'}", b"\xff\xfe", b"ON"])
def test_malformed_json_to_a_driver_endpoint_is_400_malformed_json(client, body):
    response = client.generic("POST", DUTY, body, content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_malformed_json_to_an_idempotent_endpoint_is_400_malformed_json(client):
    response = client.generic("POST", EMERGENCY, b"{", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert_error(response, 400, "malformed_json")
    assert not EmergencyAlert.objects.exists()


def test_malformed_json_to_an_anonymous_endpoint_is_400_malformed_json():
    response = APIClient().generic("POST", SIGNUP, b'{"mobile": ', content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("path", [DUTY, EMERGENCY, DOCUMENTS, SIGNUP])
def test_json_nested_too_deeply_for_the_parser_is_400_malformed_json_not_500(client, path):
    body = b"[" * 100_000 + b"]" * 100_000
    error = assert_error(client.generic("POST", path, body, content_type="application/json"), 400, "malformed_json")
    assert "nested too deeply" in error["message"]


def test_a_json_body_that_is_not_an_object_is_400_not_500(client):
    for body in (b"[]", b'"ON"', b"null", b"42"):
        response = client.generic("POST", DUTY, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_wrong_types_are_400_with_a_message_per_field(client):
    response = client.patch(PROFILE, {"name": ["A", "list"], "language": {"not": "text"}}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"name", "language"}
    assert all(isinstance(m, str) for messages in error["fields"].values() for m in messages)


def test_missing_fields_are_400_naming_each():
    error = assert_error(APIClient().post(SIGNUP, {"name": "Asha"}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"mobile", "city", "password"}
    assert error["fields"]["mobile"] == ["This field is required."]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_json_is_415_unsupported_media_type(client, content_type):
    response = client.generic("POST", DUTY, b"status=ON", content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")


def test_an_unparseable_multipart_body_is_400_malformed_request(client):
    response = client.generic("POST", DOCUMENTS, b"--x\r\nbroken", content_type="multipart/form-data")
    error = assert_error(response, 400, "malformed_request")
    assert "JSON" not in error["message"]


def test_a_json_body_over_the_request_size_limit_is_413_payload_too_large(client):
    body = b'{"message": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    response = client.generic("POST", EMERGENCY, body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_a_form_with_too_many_fields_is_413_in_the_error_shape_not_an_html_page(client):
    fields = {f"field{n}": "x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    assert_error(client.post(DOCUMENTS, fields, format="multipart"), 413, "payload_too_large")


def test_a_form_with_too_many_files_is_413_in_the_error_shape_not_an_html_page(client):
    files = {f"file{n}": io.BytesIO(b"%PDF-1.4") for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)}
    assert_error(client.post(DOCUMENTS, {"doc_type": "PAN", **files}, format="multipart"), 413, "payload_too_large")


def test_a_form_encoded_body_to_a_json_endpoint_is_415(client):
    assert_error(client.post(DUTY, {"status": "ON"}, format="multipart"), 415, "unsupported_media_type")


def test_an_unknown_api_path_is_404_in_the_error_shape(client):
    assert_error(client.get("/api/v1/driver/nothing-here/"), 404, "not_found")
    assert_error(APIClient().post("/api/v2/auth/signup/", {}, format="json"), 404, "not_found")


def test_a_non_numeric_document_id_is_404_in_the_error_shape(client):
    assert_error(client.get(f"{DOCUMENTS}abc/"), 404, "not_found")


def test_an_api_path_without_its_trailing_slash_is_404_json_not_a_redirect(client):
    assert_error(client.post(DUTY.rstrip("/"), {"status": "ON"}, format="json"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", DUTY), ("get", DUTY), ("put", PROFILE), ("post", HOS), ("delete", DOCUMENTS), ("get", EMERGENCY)],
)
def test_a_wrong_method_is_405_in_the_error_shape(client, method, path):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"]


def test_a_wrong_method_on_an_anonymous_endpoint_is_405():
    assert_error(APIClient().get(SIGNUP), 405, "method_not_allowed")


def test_an_html_only_accept_header_still_gets_a_json_error(client):
    response = client.get(PROFILE, HTTP_ACCEPT="text/html")
    assert_error(response, 406, "not_acceptable")


def test_an_unhandled_error_is_a_500_in_the_error_shape_without_a_traceback(client, failing_disk):
    client.raise_request_exception = False

    response = client.post(DOCUMENTS, {"doc_type": "PAN", "file": io.BytesIO(png_bytes())}, format="multipart")

    error = assert_error(response, 500, "server_error")
    assert "Traceback" not in error["message"]
    assert not KycDocument.objects.exists()


# --- rate limits ---------------------------------------------------------------------------------


def _window_left(scope: str, key: str) -> int:
    """Seconds left in the counting window a caller's key falls in (django-ratelimit staggers windows per key)."""
    request = RequestFactory().get("/")
    usage = get_usage(request, group=f"api:{scope}", key=lambda g, r: key, rate=settings.API_RATE_LIMITS[scope])
    assert usage is not None
    return usage["time_left"]


def ip_with_time_left(scope: str, *, besides: str = "") -> str:
    """A client address whose window will not roll over mid-test, so the count under test is not reset."""
    for n in range(1, 250):
        ip = f"10.20.30.{n}"
        if ip != besides and _window_left(scope, f"ip:{ip}") >= 10:
            return ip
    raise AssertionError("no address with a fresh window")


def token_with_time_left(scope: str) -> str:
    for _ in range(250):
        key = Token.generate_key()
        if _window_left(scope, f"token:{key}") >= 10:
            return key
    raise AssertionError("no token with a fresh window")


def assert_rate_limited(response) -> None:
    assert_error(response, 429, "rate_limited")
    retry_after = response["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60


def test_sign_in_is_limited_to_ten_attempts_a_minute_per_ip():
    ip = ip_with_time_left("login")
    client = APIClient(REMOTE_ADDR=ip)
    attempts = [client.post(TOKEN, GUESS, format="json").status_code for _ in range(10)]
    assert attempts == [400] * 10

    assert_rate_limited(client.post(TOKEN, GUESS, format="json"))


def test_sign_in_limit_holds_even_for_the_right_password_once_tripped():
    rider = RiderFactory(mobile="+919812345678")
    rider.user.set_password(PASSWORD)
    rider.user.save()
    client = APIClient(REMOTE_ADDR=ip_with_time_left("login"))
    for _ in range(10):
        client.post(TOKEN, GUESS, format="json")
    assert_rate_limited(client.post(TOKEN, {"mobile": "+919812345678", "password": PASSWORD}, format="json"))


def test_sign_in_limit_counts_each_ip_separately():
    limited_ip = ip_with_time_left("login")
    limited = APIClient(REMOTE_ADDR=limited_ip)
    for _ in range(11):
        response = limited.post(TOKEN, GUESS, format="json")
    assert response.status_code == 429

    other = APIClient(REMOTE_ADDR=ip_with_time_left("login", besides=limited_ip))
    assert other.post(TOKEN, GUESS, format="json").status_code == 400


@override_settings(API_RATE_LIMITS={**settings.API_RATE_LIMITS, "anonymous": "3/m"})
def test_anonymous_endpoints_are_limited_per_ip():
    client = APIClient(REMOTE_ADDR=ip_with_time_left("anonymous"))
    assert [client.post(SIGNUP, {}, format="json").status_code for _ in range(3)] == [400] * 3
    assert_rate_limited(client.post(SIGNUP, {}, format="json"))


@override_settings(API_RATE_LIMITS={**settings.API_RATE_LIMITS, "driver": "3/m"})
def test_driver_endpoints_are_limited_per_token(rider):
    client = client_of(rider, token_with_time_left("driver"))
    assert [client.get(HOS).status_code for _ in range(3)] == [200] * 3
    assert_rate_limited(client.get(HOS))
    assert_rate_limited(client.post(DUTY, {"status": "ON"}, format="json"))  # one counter for every endpoint


@override_settings(API_RATE_LIMITS={**settings.API_RATE_LIMITS, "driver": "3/m"})
def test_two_driver_tokens_from_one_ip_have_separate_counters():
    first = client_of(RiderFactory(), token_with_time_left("driver"))
    second = client_of(RiderFactory(), token_with_time_left("driver"))
    for _ in range(3):
        first.get(HOS)
    assert_rate_limited(first.get(HOS))

    assert [second.get(HOS).status_code for _ in range(3)] == [200] * 3


@override_settings(API_RATE_LIMITS={**settings.API_RATE_LIMITS, "driver": "3/m"})
def test_driver_requests_do_not_count_against_their_ips_sign_in_limit(rider):
    client = client_of(rider, token_with_time_left("driver"))
    ip = ip_with_time_left("login")
    for _ in range(4):
        client.get(HOS, REMOTE_ADDR=ip)
    response = APIClient(REMOTE_ADDR=ip).post(TOKEN, GUESS, format="json")
    assert response.status_code == 400


# --- idempotency ---------------------------------------------------------------------------------


def _signup_body() -> dict:
    return {"mobile": "+919812345678", "name": "Asha Rao", "city": CityFactory().code, "password": PASSWORD}


def test_sos_repeated_with_the_same_key_replays_the_first_response_and_stores_one_alert(client):
    body = {"lat": 12.97, "lon": 77.59, "message": "Accident"}
    first = client.post(EMERGENCY, body, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    again = client.post(EMERGENCY, body, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert EmergencyAlert.objects.count() == 1


def test_sos_without_a_key_is_not_deduplicated(client):
    client.post(EMERGENCY, {}, format="json")
    client.post(EMERGENCY, {}, format="json")
    assert EmergencyAlert.objects.count() == 2


def test_sos_with_the_same_key_and_a_different_body_is_409_idempotency_key_reused(client):
    client.post(EMERGENCY, {"message": "Accident"}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    response = client.post(EMERGENCY, {"message": "Robbery"}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")

    assert_error(response, 409, "idempotency_key_reused")
    assert list(EmergencyAlert.objects.values_list("message", flat=True)) == ["Accident"]


def test_the_same_key_from_another_rider_is_not_a_replay(client):
    other = client_of(RiderFactory())
    first = client.post(EMERGENCY, {"message": "Help"}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    second = other.post(EMERGENCY, {"message": "Help"}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")

    assert first.status_code == second.status_code == 201
    assert not second.has_header("Idempotent-Replayed")
    assert first.json()["id"] != second.json()["id"]
    assert EmergencyAlert.objects.count() == 2


def test_signup_repeated_with_the_same_key_replays_and_creates_one_rider():
    body = _signup_body()
    first = APIClient().post(SIGNUP, body, format="json", HTTP_IDEMPOTENCY_KEY="signup-1")
    again = APIClient().post(SIGNUP, body, format="json", HTTP_IDEMPOTENCY_KEY="signup-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Rider.objects.count() == 1


def test_signup_with_the_same_key_and_a_different_body_is_409():
    body = _signup_body()
    APIClient().post(SIGNUP, body, format="json", HTTP_IDEMPOTENCY_KEY="signup-1")
    response = APIClient().post(SIGNUP, {**body, "name": "Someone"}, format="json", HTTP_IDEMPOTENCY_KEY="signup-1")
    assert_error(response, 409, "idempotency_key_reused")
    assert Rider.objects.count() == 1


def test_a_refused_request_is_replayed_as_refused(client):
    first = client.post(EMERGENCY, {"lat": 12.9}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    again = client.post(EMERGENCY, {"lat": 12.9}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_a_key_whose_first_attempt_failed_with_a_server_error_can_be_retried(client, failing_disk):
    client.raise_request_exception = False
    content = png_bytes()

    def send():
        return client.post(
            DOCUMENTS, {"doc_type": "PAN", "file": io.BytesIO(content)}, format="multipart", HTTP_IDEMPOTENCY_KEY="up-1"
        )

    assert send().status_code == 500
    failing_disk()
    retried = send()

    assert retried.status_code == 201, retried.content
    assert not retried.has_header("Idempotent-Replayed")
    assert KycDocument.objects.count() == 1


def test_a_kyc_upload_retried_with_a_new_multipart_boundary_is_a_replay(client):
    content = png_bytes()

    def send(boundary: str):
        file = io.BytesIO(content)
        file.name = "pan.png"
        body = encode_multipart(boundary, {"doc_type": "PAN", "file": file})
        return client.generic(
            "POST",
            DOCUMENTS,
            body,
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_IDEMPOTENCY_KEY="up-1",
        )

    first = send("----okhttp-a1b2c3")
    again = send("----okhttp-d4e5f6")  # the same upload: phones pick a new boundary on every retry

    assert first.status_code == again.status_code == 201, again.content
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert KycDocument.objects.count() == 1


def test_a_kyc_upload_with_a_key_and_a_different_file_is_409(client):
    client.post(DOCUMENTS, {"doc_type": "PAN", "file": io.BytesIO(png_bytes())}, HTTP_IDEMPOTENCY_KEY="up-1")
    other = io.BytesIO(b"%PDF-1.4 another document")
    response = client.post(DOCUMENTS, {"doc_type": "PAN", "file": other}, HTTP_IDEMPOTENCY_KEY="up-1")
    assert_error(response, 409, "idempotency_key_reused")


def test_a_large_kyc_upload_with_a_key_is_accepted_like_one_without(client):
    big_pdf = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)  # above Django's 2.5 MB in-memory body limit
    file = io.BytesIO(big_pdf)
    file.name = "rc.pdf"
    response = client.post(DOCUMENTS, {"doc_type": "RC", "file": file}, HTTP_IDEMPOTENCY_KEY="up-big")
    assert response.status_code == 201, response.content
    assert response.json()["size_bytes"] == len(big_pdf)


def test_an_idempotency_key_is_kept_for_24_hours(rider):
    token_key = Token.generate_key()
    client_of(rider, token_key).post(EMERGENCY, {}, format="json", HTTP_IDEMPOTENCY_KEY="sos-1")
    (stored,) = cache.keys(f"idem:token:{token_key}:*")
    assert 24 * 60 * 60 - 60 <= cache.ttl(stored) <= 24 * 60 * 60


def test_an_idempotency_key_longer_than_255_characters_is_400(client):
    response = client.post(EMERGENCY, {}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    error = assert_error(response, 400, "invalid_input")
    assert set(error["fields"]) == {"Idempotency-Key"}
    assert not EmergencyAlert.objects.exists()


# --- response timing -----------------------------------------------------------------------------


def _assert_timed(response) -> None:
    value = response["X-Response-Time"]
    assert value.endswith("ms")
    assert float(value.removesuffix("ms")) >= 0


@pytest.mark.parametrize(
    "request_",
    [
        lambda c, a: c.get(HOS),
        lambda c, a: a.post(SIGNUP, {}, format="json"),
        lambda c, a: a.get(PROFILE),
        lambda c, a: a.get("/api/v1/unknown/"),
        lambda c, a: a.get("/api/schema/"),
    ],
    ids=["driver-200", "signup-400", "no-token-401", "unknown-404", "schema"],
)
def test_api_responses_carry_x_response_time(client, request_: Callable):
    _assert_timed(request_(client, APIClient()))


def test_health_responses_carry_x_response_time():
    _assert_timed(APIClient().get("/health/"))


def test_admin_pages_carry_x_response_time(staff_client):
    _assert_timed(staff_client.get("/admin/"))
    _assert_timed(APIClient().get("/admin/login/"))
