"""``/metrics``: Prometheus text with what the portal counts and what a scrape reads; closed to the public."""

import time
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from riders.models import DutyStatus, KycStatus
from tests.riders.factories import RiderFactory
from tests.wallet.factories import earn
from wallet import selectors as wallet_selectors

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict[str, list]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.content.decode())}


def value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_internal_addresses_may_scrape_and_the_public_may_not(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="8.8.8.8").status_code == 403


def test_with_a_token_set_only_the_token_opens_it(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", REMOTE_ADDR="8.8.8.8")
    assert right.status_code == 200


def test_request_latency_is_a_histogram_by_route_method_and_status(client):
    before = scrape(client).get("fleetops_http_request_duration_seconds", [])
    client.get("/health/")
    client.get("/api/v1/orders/")  # no token: 401
    after = scrape(client)["fleetops_http_request_duration_seconds"]
    name = "fleetops_http_request_duration_seconds_count"
    for route, status in (("health/", "200"), ("api/v1/orders/", "401")):
        grew = value(after, name, route=route, method="GET", status=status) - value(
            before, name, route=route, method="GET", status=status
        )
        assert grew == 1, (route, status)
    assert any(s.name.endswith("_bucket") and s.labels["le"] == "0.1" for s in after)


def test_points_ledger_postings_and_cache_results_are_counted(client, django_capture_on_commit_callbacks):
    rider = RiderFactory(duty_status=DutyStatus.ON, kyc_status=KycStatus.APPROVED)
    token, _ = Token.objects.get_or_create(user=rider.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    before = scrape(client)
    now = datetime.now(UTC).isoformat()

    api.post("/api/v1/driver/locations/", {"points": [{"recorded_at": now, "lat": 12.97, "lon": 77.59}]}, format="json")
    with django_capture_on_commit_callbacks(execute=True):  # postings are counted after their commit
        earn(rider.pk, 100_00)
    wallet_selectors.wallet_summary(rider_id=rider.pk)
    wallet_selectors.wallet_summary(rider_id=rider.pk)

    after = scrape(client)
    points = "fleetops_gps_points_ingested_total"
    assert value(after[points[: -len("_total")]], points) - value(before.get(points[:-6], []), points) == 1
    postings = "fleetops_ledger_postings_total"
    assert value(after[postings[:-6]], postings) - value(before.get(postings[:-6], []), postings) >= 1
    cache = "fleetops_cache_requests_total"
    for result in ("hit", "miss"):
        grew = value(after[cache[:-6]], cache, cache="wallet", result=result) - value(
            before.get(cache[:-6], []), cache, cache="wallet", result=result
        )
        assert grew >= 1, result


def test_queue_depth_and_the_database_pool_are_read_at_scrape_time(client):
    families = scrape(client)
    assert {s.labels["queue"] for s in families["fleetops_celery_queue_depth"]} == {"urgent", "default", "bulk"}
    states = {s.labels["state"] for s in families["fleetops_db_pool_connections"]}
    assert states == {"size", "available", "waiting", "max"}  # settings give the default database a pool


def test_with_the_broker_down_a_scrape_still_answers(client, monkeypatch):
    connect = celery_app.connection_for_read
    monkeypatch.setattr(
        celery_app, "connection_for_read", lambda **options: connect("redis://127.0.0.1:1/0", **options)
    )
    started = time.monotonic()
    families = scrape(client)
    assert families["fleetops_celery_queue_depth"] == []
    assert time.monotonic() - started < 3  # one quick try, not kombu's retries


def test_assignments_are_counted_by_kind_after_commit(client, django_capture_on_commit_callbacks):
    from tests.fleet.factories import CityFactory
    from tests.orders.test_assignment import auto, order_in, rider_at

    city = CityFactory()
    rider_at(city, 0.2)
    name = "fleetops_assignments_total"
    before = value(scrape(client).get(name[:-6], []), name, kind="automatic")

    with django_capture_on_commit_callbacks(execute=True):
        auto(order_in(city))

    assert value(scrape(client)[name[:-6]], name, kind="automatic") - before == 1
