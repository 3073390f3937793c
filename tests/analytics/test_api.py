"""The stats and leaderboard endpoints: staff and partners read the views through Redis (X-Cache), a refresh
invalidates what was cached, and Redis down means a read from the view, never a 500."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from analytics import selectors
from analytics.api.serializers import DashboardStatsOut
from analytics.models import MaterializedView
from analytics.services import view_refresh
from riders.models import KycStatus
from tests.analytics.factories import build_world, refresh_all
from tests.api import client_of
from tests.fleet.factories import CityFactory
from tests.orders.factories import OrderFactory, PartnerFactory
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db

STATS = "/api/v1/dashboard/stats/"
LEADERBOARD = "/api/v1/leaderboard/"


@pytest.fixture
def staff() -> APIClient:
    return client_of(UserFactory(is_staff=True))


@pytest.fixture
def world():
    world = build_world()
    refresh_all()
    return world


def test_stats_of_a_city_for_staff_and_partners(world, staff):
    for client in (staff, client_of(PartnerFactory())):
        response = client.get(STATS, {"city": "ana"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["city"], body["active_riders"], body["on_duty_riders"]) == ("ANA", 2, 1)
        assert body["orders_today_by_status"]["created"] == 2
        assert (body["distance_today_m"], body["cod_outstanding"]) == (18_345, "370.00")
        assert body["day"] == timezone.localdate().isoformat()
        assert body["refreshed_at"] is not None


def test_stats_are_for_staff_and_partners_only(world):
    rider = RiderFactory(city=world.city, kyc_status=KycStatus.APPROVED, kyc_reviewed_at=timezone.now())
    assert client_of(rider.user).get(STATS, {"city": "ANA"}).status_code == 403
    assert APIClient().get(STATS, {"city": "ANA"}).status_code == 401


def test_an_unknown_or_missing_city_is_a_400(staff):
    assert staff.get(STATS, {"city": "NOPE"}).json()["error"]["fields"]["city"] == ["No active city has this code."]
    assert staff.get(STATS).status_code == 400
    assert staff.get(LEADERBOARD, {"city": "NOPE"}).status_code == 400


def test_a_city_added_since_the_last_refresh_answers_zeros_without_a_refresh_time(world, staff):
    CityFactory(code="NEW")
    body = staff.get(STATS, {"city": "NEW"}).json()
    assert (body["orders_today"], body["cod_outstanding"], body["refreshed_at"], body["day"]) == (0, "0.00", None, None)


def test_stats_miss_then_hit_until_a_refresh_invalidates_them(world, staff, django_capture_on_commit_callbacks):
    first = staff.get(STATS, {"city": "ANA"})
    second = staff.get(STATS, {"city": "ANA"})
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert first.json() == second.json()
    OrderFactory(city=world.city)
    assert staff.get(STATS, {"city": "ANA"}).json()["orders_today"] == first.json()["orders_today"]  # cached
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        view_refresh(view=MaterializedView.DASHBOARD_STATS)
    assert staff.get(STATS, {"city": "ANA"})["X-Cache"] == "HIT"  # not before the refresh commits
    for callback in callbacks:
        callback()
    third = staff.get(STATS, {"city": "ANA"})
    assert (third["X-Cache"], third.json()["orders_today"]) == ("MISS", first.json()["orders_today"] + 1)


def test_a_refresh_of_one_view_keeps_the_others_cache(world, staff, django_capture_on_commit_callbacks):
    staff.get(STATS, {"city": "ANA"})
    with django_capture_on_commit_callbacks(execute=True):
        view_refresh(view=MaterializedView.RIDER_LEADERBOARD)
    assert staff.get(STATS, {"city": "ANA"})["X-Cache"] == "HIT"


def test_a_value_read_before_a_refresh_committed_is_never_served_after_it(world, django_capture_on_commit_callbacks):
    """The read-through race: a reader misses, reads the view, the refresh commits and invalidates, then the
    reader stores what it read. The next reader must not get that old value."""
    view = MaterializedView.DASHBOARD_STATS
    from analytics.cache import view_cached

    def slow_load():
        with django_capture_on_commit_callbacks(execute=True):
            view_refresh(view=view)  # commits (and invalidates) while this reader holds the old figures
        return {"old": True}

    assert view_cached(view, "ANA", slow_load).hit is False
    again = view_cached(view, "ANA", lambda: {"old": False})
    assert (again.hit, again.value) == (False, {"old": False})


def test_leaderboard_best_first_with_a_limit_and_cached(world, staff):
    on_duty, off_duty, *_ = world.riders
    response = staff.get(LEADERBOARD, {"city": "ANA", "limit": 2})
    assert (response.status_code, response["X-Cache"]) == (200, "MISS")
    body = response.json()
    assert [(row["rank"], row["rider_id"]) for row in body["riders"]] == [(1, off_duty.pk), (2, on_duty.pk)]
    assert body["riders"][0]["earnings"] == "160.00"
    assert body["riders"][1]["average_rating"] == pytest.approx(4.0)
    one = staff.get(LEADERBOARD, {"city": "ANA", "limit": 1})
    assert (one["X-Cache"], len(one.json()["riders"])) == ("HIT", 1)  # one cached list per city, any limit
    assert staff.get(LEADERBOARD, {"city": "ANA", "limit": 101}).status_code == 400


def test_redis_down_the_views_answer(world, staff):
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:1/0",
                "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 0.5},
            }
        }
    ):
        stats = staff.get(STATS, {"city": "ANA"})
        board = staff.get(LEADERBOARD, {"city": "ANA"})
        assert selectors.dashboard_stats("ana")["on_duty_riders"] == 1
    assert (stats.status_code, stats["X-Cache"], stats.json()["active_riders"]) == (200, "MISS", 2)
    assert (board.status_code, board["X-Cache"], len(board.json()["riders"])) == (200, "MISS", 3)


def test_dashboard_selector_for_other_apps(world):
    stats = selectors.dashboard_stats("ana")
    assert (stats["city_code"], stats["on_duty_riders"], stats["distance_today_m"]) == ("ANA", 1, 18_345)
    assert set(stats) == set(selectors.STATS_FIELDS)
    assert selectors.rider_performance(rider_id=world.riders[0].pk)["completed_orders"] >= 3


def test_a_cached_read_costs_no_query_and_a_miss_two(world, staff, django_assert_num_queries):
    with django_assert_num_queries(2):  # the token with its user (then cached), the view's row
        assert staff.get(STATS, {"city": "ANA"})["X-Cache"] == "MISS"
    with django_assert_num_queries(0):  # the token from its cache: no city lookup, no view
        assert staff.get(STATS, {"city": "ANA"})["X-Cache"] == "HIT"


#: Headers that differ between any two answers, cached or not.
PER_REQUEST_HEADERS = {"X-Cache", "X-Response-Time", "X-Request-ID"}


def test_a_hit_answers_the_same_bytes_and_headers_as_the_miss_before_it(world, staff):
    miss, hit = staff.get(STATS, {"city": "ANA"}), staff.get(STATS, {"city": "ANA"})
    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert hit.content == miss.content
    assert {k: v for k, v in hit.items() if k not in PER_REQUEST_HEADERS} == {
        k: v for k, v in miss.items() if k not in PER_REQUEST_HEADERS
    }
    assert hit["Content-Type"] == "application/json"


def test_the_cached_body_is_what_the_serializer_renders(world, staff):
    staff.get(STATS, {"city": "ANA"})
    hit = staff.get(STATS, {"city": "ANA"})
    expected = JSONRenderer().render(DashboardStatsOut(selectors.dashboard_stats("ANA")).data)
    assert (hit["X-Cache"], hit.content) == ("HIT", expected)


def test_a_client_asking_for_indentation_gets_it_from_the_cache_too(world, staff):
    plain = staff.get(STATS, {"city": "ANA"})
    indented = staff.get(STATS, {"city": "ANA"}, HTTP_ACCEPT="application/json; indent=2")
    assert (indented.status_code, indented["X-Cache"]) == (200, "HIT")
    assert indented.content.startswith(b'{\n  "city": "ANA"')
    assert indented.json() == plain.json()


def test_a_refresh_makes_the_cached_body_a_miss_with_the_new_figures(world, staff, django_capture_on_commit_callbacks):
    before = staff.get(STATS, {"city": "ANA"}).json()
    OrderFactory(city=world.city)
    with django_capture_on_commit_callbacks(execute=True):
        view_refresh(view=MaterializedView.DASHBOARD_STATS)
    after = staff.get(STATS, {"city": "ANA"})
    assert (after["X-Cache"], after.json()["orders_today"]) == ("MISS", before["orders_today"] + 1)
    assert selectors.dashboard_stats("ana")["orders_today"] == before["orders_today"] + 1
