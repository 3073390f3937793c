"""The staff sign-in is throttled per client IP and per username; a Redis failure lets sign-ins through."""

import pytest
from django.core.cache import caches
from django.urls import reverse

from tests.riders.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")


@pytest.fixture(autouse=True)
def _login_rate(settings):
    settings.API_RATE_LIMITS = {**settings.API_RATE_LIMITS, "login": "3/m"}


def attempt(client, username="ops1", password="wrong", ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_past_the_limit_from_one_ip_a_sign_in_is_refused_without_checking_the_password(client):
    UserFactory(username="ops1", is_staff=True).set_password("right-password-1")
    assert [attempt(client, username=f"u{i}").status_code for i in range(3)] == [200, 200, 200]

    refused = attempt(client, username="ops1", password="right-password-1")

    assert refused.status_code == 429
    assert "Too many sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_username_guessed_from_many_ips_is_throttled_too(client):
    codes = [attempt(client, ip=f"10.0.1.{i}").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]


def test_under_the_limit_staff_sign_in(client):
    user = UserFactory(username="ops2", is_staff=True)
    user.set_password("right-password-2")
    user.save()
    response = attempt(client, username="ops2", password="right-password-2")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_with_redis_down_sign_ins_pass(client, settings, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    caches._settings = None  # type: ignore[attr-defined]
    codes = [attempt(client, ip="10.0.2.1").status_code for i in range(5)]
    assert codes == [200] * 5
    assert "staff sign-in not throttled" in caplog.text
