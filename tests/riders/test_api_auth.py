"""Riders sign up and sign in for a token; only a rider's own token opens the driver API."""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.api.authentication import TokenAuthentication
from riders.models import DutyStatus, KycStatus, Rider, RiderStatus
from tests.fleet.factories import CityFactory
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup/"
TOKEN = "/api/v1/auth/token/"
PROFILE = "/api/v1/driver/profile/"
PASSWORD = "kite-orbit-5521"


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


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def rider_with_password(**kwargs) -> Rider:
    rider = RiderFactory(**kwargs)
    rider.user.set_password(PASSWORD)
    rider.user.save(update_fields=["password"])
    return rider


def signup(client: APIClient, **overrides):
    city = overrides.pop("city", None) or CityFactory().code
    body = {"mobile": "+919812345678", "name": "Asha Rao", "city": city, "password": PASSWORD, **overrides}
    return client.post(SIGNUP, body, format="json")


def test_signup_with_e164_mobile_creates_a_kyc_pending_rider_and_returns_a_working_token():
    client = APIClient()
    response = signup(client, mobile="+14155550123")

    assert response.status_code == 201, response.content
    body = response.json()
    rider = Rider.objects.get(mobile="+14155550123")
    assert rider.kyc_status == KycStatus.PENDING
    assert rider.status == RiderStatus.ACTIVE
    assert rider.duty_status == DutyStatus.OFF
    assert body["rider"]["id"] == rider.pk
    assert body["rider"]["kyc_status"] == "PENDING"
    assert token_client(body["token"]).get(PROFILE).json()["mobile"] == "+14155550123"


@pytest.mark.parametrize("typed", ["9812345678", "98123 45678", "09812345678", "919812345678"])
def test_signup_normalises_a_ten_digit_indian_mobile_to_plus_91(typed):
    response = signup(APIClient(), mobile=typed)

    assert response.status_code == 201, response.content
    assert response.json()["rider"]["mobile"] == "+919812345678"
    assert User.objects.get(rider__mobile="+919812345678").username == "+919812345678"


def test_signup_with_an_unusable_mobile_is_400_naming_the_field():
    error = assert_error(signup(APIClient(), mobile="12345"), 400, "invalid_input")
    assert set(error["fields"]) == {"mobile"}
    assert not Rider.objects.exists()


def test_signup_with_a_taken_mobile_is_409_mobile_taken():
    RiderFactory(mobile="+919812345678")
    assert_error(signup(APIClient(), mobile="9812345678"), 409, "mobile_taken")
    assert Rider.objects.count() == 1


def test_signup_with_a_weak_password_is_400_on_the_password_field():
    error = assert_error(signup(APIClient(), password="12345"), 400, "invalid_input")
    assert set(error["fields"]) == {"password"}


@pytest.mark.parametrize("password", ["+919812345678", "asha rao"], ids=["the-mobile", "the-name"])
def test_signup_with_a_password_like_the_mobile_or_name_is_400_on_the_password_field(password):
    error = assert_error(signup(APIClient(), password=password), 400, "invalid_input")
    assert set(error["fields"]) == {"password"}
    assert not Rider.objects.exists()


def test_signup_with_non_ascii_digits_in_the_mobile_is_400_on_the_mobile_field():
    arabic_indic = "+9198" + "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"
    error = assert_error(signup(APIClient(), mobile=arabic_indic), 400, "invalid_input")
    assert set(error["fields"]) == {"mobile"}


def test_signup_in_an_unknown_or_inactive_city_is_400_on_the_city_field():
    closed = CityFactory(is_active=False)
    for code in ("NOPE", closed.code):
        error = assert_error(signup(APIClient(), city=code), 400, "invalid_input")
        assert set(error["fields"]) == {"city"}
    assert not Rider.objects.exists()


def test_signup_with_a_nul_in_the_city_code_is_400_on_the_city_field():
    CityFactory(code="BLR")
    error = assert_error(signup(APIClient(), city="BLR\x00"), 400, "invalid_input")
    assert set(error["fields"]) == {"city"}


def test_signup_with_missing_fields_lists_every_missing_field():
    error = assert_error(APIClient().post(SIGNUP, {}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"mobile", "name", "city", "password"}


def test_token_for_the_right_password_is_the_riders_token():
    rider = rider_with_password(mobile="+919812345678")
    response = APIClient().post(TOKEN, {"mobile": "98123 45678", "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["token"] == Token.objects.get(user=rider.user).key
    assert response.json()["rider"]["id"] == rider.pk
    assert token_client(response.json()["token"]).get(PROFILE).status_code == 200


def test_token_asked_twice_is_the_same_token():
    rider_with_password(mobile="+919812345678")
    first = APIClient().post(TOKEN, {"mobile": "+919812345678", "password": PASSWORD}, format="json")
    second = APIClient().post(TOKEN, {"mobile": "+919812345678", "password": PASSWORD}, format="json")
    assert first.json()["token"] == second.json()["token"]


def test_token_with_a_wrong_password_is_400_invalid_credentials():
    rider_with_password(mobile="+919812345678")
    response = APIClient().post(TOKEN, {"mobile": "+919812345678", "password": "not-it-at-all"}, format="json")
    assert_error(response, 400, "invalid_credentials")


def test_token_for_an_unknown_mobile_is_400_invalid_credentials_like_a_wrong_password():
    response = APIClient().post(TOKEN, {"mobile": "+919800000000", "password": PASSWORD}, format="json")
    assert_error(response, 400, "invalid_credentials")


def test_token_for_an_offboarded_rider_is_422_account_closed():
    rider = rider_with_password(mobile="+919812345678", status=RiderStatus.OFFBOARDED)
    response = APIClient().post(TOKEN, {"mobile": rider.mobile, "password": PASSWORD}, format="json")
    assert_error(response, 422, "account_closed")
    assert not Token.objects.filter(user=rider.user).exists()


def test_token_without_a_password_is_400_naming_the_field():
    error = assert_error(APIClient().post(TOKEN, {"mobile": "+919812345678"}, format="json"), 400, "invalid_input")
    assert set(error["fields"]) == {"password"}


def test_driver_endpoint_without_a_token_is_401_not_authenticated():
    response = APIClient().get(PROFILE)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_driver_endpoint_with_an_unknown_token_is_401_authentication_failed():
    assert_error(token_client("0" * 40).get(PROFILE), 401, "authentication_failed")


def test_driver_endpoint_with_a_malformed_authorization_header_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two words")
    assert_error(client.get(PROFILE), 401, "authentication_failed")


def test_driver_endpoint_with_a_nul_in_the_token_is_401_not_500():
    assert_error(token_client("abc\x00def").get(PROFILE), 401, "authentication_failed")


def test_driver_endpoint_with_a_deactivated_users_token_is_401():
    rider = RiderFactory()
    token = Token.objects.create(user=rider.user)
    User.objects.filter(pk=rider.user.pk).update(is_active=False)
    assert_error(token_client(token.key).get(PROFILE), 401, "authentication_failed")


def test_driver_endpoint_with_a_staff_token_that_has_no_rider_is_403(admin_user):
    token = Token.objects.create(user=admin_user)
    assert_error(token_client(token.key).get(PROFILE), 403, "permission_denied")


def test_driver_endpoint_with_a_staff_session_is_403(staff_client):
    assert_error(staff_client.get(PROFILE), 403, "permission_denied")


def test_a_token_is_read_with_its_user_rider_and_city_in_one_query(django_assert_num_queries):
    rider = RiderFactory()
    token = Token.objects.create(user=rider.user)

    with django_assert_num_queries(1):
        user, auth = TokenAuthentication().authenticate_credentials(token.key)
        assert auth == token
        assert (user.pk, user.rider.pk, user.rider.city.code) == (rider.user.pk, rider.pk, rider.city.code)
        assert user.rider.user is user
        assert user.rider.name == rider.name
        assert user.rider.city.name == rider.city.name
        assert auth.user is user


def test_a_staff_token_is_read_in_one_query_and_has_no_rider(admin_user, django_assert_num_queries):
    token = Token.objects.create(user=admin_user)

    with django_assert_num_queries(1):
        user, _ = TokenAuthentication().authenticate_credentials(token.key)
        assert user.pk == admin_user.pk
        assert user.is_staff
        assert not hasattr(user, "rider")
