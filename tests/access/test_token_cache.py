"""The token cache of the staff and partner read endpoints: a cached token costs no query, and every way of
revoking or narrowing a token's access takes effect on the very next request, as without the cache."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.authtoken.models import Token

from access.token_cache import CachedTokenAuthentication, _cache_key, tokens_revoke_cached
from riders import services as rider_services
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.orders.factories import PartnerFactory
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

#: An endpoint that authenticates through the token cache (a city without a refresh yet: zeros, no view needed).
STATS = "/api/v1/dashboard/stats/"
CITY = {"city": "TOK"}


@pytest.fixture(autouse=True)
def city():
    return CityFactory(code="TOK")


def test_a_staff_token_is_read_from_the_database_once_then_from_the_cache(django_assert_num_queries):
    staff = client_of(UserFactory(is_staff=True))
    with django_assert_num_queries(3):  # the token with its user; the view has no row yet, so the city
        assert staff.get(STATS, CITY).status_code == 200
    with django_assert_num_queries(0):
        assert staff.get(STATS, CITY).status_code == 200


def test_a_partner_token_and_the_partner_check_come_from_the_cache(django_assert_num_queries):
    partner = client_of(PartnerFactory())
    assert partner.get(STATS, CITY).status_code == 200
    with django_assert_num_queries(0):  # neither the token nor the group membership
        assert partner.get(STATS, CITY).status_code == 200


def test_the_cache_holds_no_token_and_no_password_hash():
    user = UserFactory(is_staff=True)
    client_of(user).get(STATS, CITY)
    key = Token.objects.get(user=user).key
    entry = cache.get(_cache_key(key))
    assert entry["user"]["id"] == user.pk
    assert "password" not in entry["user"]
    assert key not in repr(entry)
    assert cache.get(f"auth:token:{key}") is None


def test_a_cached_user_reads_its_password_from_the_database():
    user = UserFactory(is_staff=True)
    user.set_password("correct horse")
    user.save()
    client_of(user).get(STATS, CITY)
    token = Token.objects.get(user=user)
    cached_user, cached_token = CachedTokenAuthentication(use_cache=True).authenticate_credentials(token.key)
    assert (cached_user.pk, cached_token.key, cached_user.is_staff) == (user.pk, token.key, True)
    assert cached_user.get_deferred_fields() == {"password"}
    assert cached_user.check_password("correct horse")


def test_a_deleted_token_is_refused_at_once():
    user = UserFactory(is_staff=True)
    staff = client_of(user)
    assert staff.get(STATS, CITY).status_code == 200
    Token.objects.filter(user=user).delete()
    assert staff.get(STATS, CITY).status_code == 401


def test_signing_out_refuses_the_cached_token_at_once():
    staff = client_of(UserFactory(is_staff=True))
    assert staff.get(STATS, CITY).status_code == 200
    assert staff.delete("/api/v1/auth/token/").status_code == 204
    assert staff.get(STATS, CITY).status_code == 401


def test_a_deactivated_user_is_refused_at_once():
    user = UserFactory(is_staff=True)
    staff = client_of(user)
    assert staff.get(STATS, CITY).status_code == 200
    user.is_active = False
    user.save()
    assert staff.get(STATS, CITY).status_code == 401


def test_a_deleted_user_is_refused_at_once():
    user = UserFactory(is_staff=True)
    staff = client_of(user)
    assert staff.get(STATS, CITY).status_code == 200
    user.delete()
    assert staff.get(STATS, CITY).status_code == 401


def test_a_user_no_longer_staff_is_forbidden_at_once():
    user = UserFactory(is_staff=True)
    staff = client_of(user)
    assert staff.get(STATS, CITY).status_code == 200
    user.is_staff = False
    user.save()
    assert staff.get(STATS, CITY).status_code == 403


def test_a_sign_in_timestamp_keeps_the_cached_token(django_assert_num_queries):
    user = UserFactory(is_staff=True)
    staff = client_of(user)
    staff.get(STATS, CITY)
    user.save(update_fields=["last_login"])
    with django_assert_num_queries(0):
        assert staff.get(STATS, CITY).status_code == 200


def test_a_partner_taken_out_of_the_group_is_forbidden_at_once():
    partner = PartnerFactory()
    client = client_of(partner)
    assert client.get(STATS, CITY).status_code == 200
    partner.groups.remove(Group.objects.get(name=settings.PARTNER_GROUP))
    assert client.get(STATS, CITY).status_code == 403


@pytest.mark.parametrize("change", ["clear the group", "remove from the group", "rename the group", "delete it"])
def test_a_change_of_the_partner_group_is_seen_at_once(change):
    partner = PartnerFactory()
    client = client_of(partner)
    assert client.get(STATS, CITY).status_code == 200
    group = Group.objects.get(name=settings.PARTNER_GROUP)
    if change == "clear the group":
        group.user_set.clear()
    elif change == "remove from the group":
        group.user_set.remove(partner)
    elif change == "rename the group":
        group.name = "former-partners"
        group.save()
    else:
        group.delete()
    assert client.get(STATS, CITY).status_code == 403


def test_a_user_made_partner_is_let_in_at_once():
    user = UserFactory()
    client = client_of(user)
    assert client.get(STATS, CITY).status_code == 403
    user.groups.add(Group.objects.get_or_create(name=settings.PARTNER_GROUP)[0])
    assert client.get(STATS, CITY).status_code == 200


def test_a_riders_token_is_never_cached_and_suspension_revokes_it(admin_user, django_assert_num_queries):
    rider = RiderFactory()
    client = client_of(rider.user)
    key = Token.objects.get(user=rider.user).key
    assert client.get(STATS, CITY).status_code == 403  # not staff nor partner
    assert cache.get(_cache_key(key)) is None
    with django_assert_num_queries(2):  # the token with the rider, whether a partner: each time
        assert client.get(STATS, CITY).status_code == 403
    rider_services.rider_suspend(rider_ids=[rider.pk], actor=admin_user, reason="Fraud")
    assert client.get(STATS, CITY).status_code == 401


def test_a_view_that_does_not_ask_for_the_cache_reads_the_token_from_the_database():
    partner = PartnerFactory()
    client = client_of(partner)
    assert client.get("/api/v1/orders/").status_code == 200
    assert cache.get(_cache_key(Token.objects.get(user=partner).key)) is None


def test_redis_down_tokens_are_read_from_the_database():
    staff = client_of(UserFactory(is_staff=True))
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        assert staff.get(STATS, CITY).status_code == 200
        tokens_revoke_cached(token_keys=["any"])  # logged, never raised


class UncommittedRevocation:
    """A token deleted in another thread's transaction that commits only when told to (``commit``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.deleted, self.may_commit, self.committed = threading.Event(), threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                Token.objects.filter(key=self.key).delete()
                self.deleted.set()
                assert self.may_commit.wait(10)
            self.committed.set()  # after the on-commit callbacks, which run on leaving the block
        finally:
            connection.close()

    def __enter__(self) -> UncommittedRevocation:
        self.thread.start()
        assert self.deleted.wait(10)
        return self

    def commit(self) -> None:
        self.may_commit.set()
        self.thread.join(10)
        assert self.committed.is_set()

    def __exit__(self, *exc: object) -> None:
        self.may_commit.set()
        self.thread.join(10)


@pytest.mark.django_db(transaction=True)
def test_a_token_read_while_its_revocation_commits_is_never_cached():
    """The read-through race: a request reads the token (still there for it) while another transaction is
    deleting it; what it read must not land in the cache, or the token would outlive the commit."""
    user = UserFactory(is_staff=True)
    key = Token.objects.create(user=user).key
    with UncommittedRevocation(key) as revocation:
        authenticated, _ = CachedTokenAuthentication(use_cache=True).authenticate_credentials(key)
        assert authenticated.pk == user.pk  # not revoked until the commit
        assert not isinstance(cache.get(_cache_key(key)), dict)
        revocation.commit()
    assert client_of_key(key).get(STATS, CITY).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_revocation_outlasting_its_first_tombstone_still_refuses_the_token_after_commit():
    """A transaction that takes longer than the tombstone lives: a request caches the token meanwhile (it
    is still valid), and the commit's own tombstone removes it."""
    user = UserFactory(is_staff=True)
    key = Token.objects.create(user=user).key
    with UncommittedRevocation(key) as revocation:
        cache.delete(_cache_key(key))  # the first tombstone expired
        CachedTokenAuthentication(use_cache=True).authenticate_credentials(key)
        assert isinstance(cache.get(_cache_key(key)), dict)
        revocation.commit()
    assert client_of_key(key).get(STATS, CITY).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_token_read_just_before_its_revocation_is_not_cached_after_it():
    """The other order: the request finds no tombstone, reads the token, and only then is the token deleted
    and committed (both tombstones written) before the request stores what it read. The store must lose."""
    user = UserFactory(is_staff=True)
    key = Token.objects.create(user=user).key

    def revoke() -> None:
        try:
            with transaction.atomic():
                Token.objects.filter(key=key).delete()
        finally:
            connection.close()

    def revoke_once_read(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        result = execute(sql, params, many, context)
        if "authtoken_token" in sql:
            thread = threading.Thread(target=revoke)
            thread.start()
            thread.join(10)
        return result

    with connection.execute_wrapper(revoke_once_read):
        authenticated, _ = CachedTokenAuthentication(use_cache=True).authenticate_credentials(key)
    assert authenticated.pk == user.pk  # read before the delete
    assert not Token.objects.filter(key=key).exists()
    assert client_of_key(key).get(STATS, CITY).status_code == 401


def client_of_key(key: str):  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
