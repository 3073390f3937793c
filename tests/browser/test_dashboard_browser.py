"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright for Python)
against the real ASGI app (uvicorn in a subprocess, on the test database). A staff member signs in through the
admin login form and opens /dispatch/; a rider's GPS point posted through the API moves the rider's marker, an
SOS posted through the API appears in the open-SOS list, and Acknowledge takes it away; then the server restarts
and the page reconnects by itself and shows what changed while it was down. A screenshot is saved
under var/test-artifacts/ (git ignores var/).

Playwright never downloads a browser here: it drives the system Chromium (CI installs it from apt, see .ci/run).
Without Chromium or Playwright the test fails under CI=true and is skipped elsewhere.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from fleet.models import LocationLog
from riders.models import AlertStatus, DutyStatus, EmergencyAlert, KycStatus
from riders.services import rider_api_token
from tests.fleet.factories import CityFactory
from tests.orders.factories import OrderFactory
from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
SERVER_START_TIMEOUT_S = 30
UI_TIMEOUT_MS = 15_000
#: The page backs off up to 10 s between attempts; the restart itself takes a few seconds.
RECONNECT_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.django_db(transaction=True)  # the server subprocess must see the rows: commit them


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it on CI)"
    return None


@pytest.fixture(scope="module")
def browser_available() -> None:
    missing = _browser_missing()
    if missing is None:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"The browser test cannot run: {missing}")
    pytest.skip(f"no browser: {missing} (set CI=true to make this a failure)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Portal:
    """The portal (HTTP and websockets, one origin) in a uvicorn subprocess on a fixed free port, sharing the test
    run's database, cache key prefix and channel-layer prefix. It can be stopped and started again on the same
    port, as a deployment restarts. Its output goes to a log the test prints."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.port_text = str(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.server: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.browser.server_settings",
            "BROWSER_TEST_DB_NAME": connection.settings_dict["NAME"],
            "BROWSER_TEST_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "BROWSER_TEST_CHANNEL_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DB_POOL_MAX_SIZE": "4",
            "DISPATCH_TILE_URL": "",  # no tiles: the map must draw on its plain background
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "config.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    self.port_text,
                ],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if self.server.poll() is not None:
                pytest.fail(f"the portal exited with {self.server.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/health/", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the portal did not answer in {SERVER_START_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def portal(browser_available: None, tmp_path: Path, transactional_db: Any) -> Iterator[Portal]:
    running = Portal(tmp_path / "portal.log")
    try:
        running.start()
        yield running
    finally:
        running.stop()
        print(f"\n--- portal log ({running.log_path}) ---\n{running.log()}")


def _artifact_path(name: str) -> Path:
    folder = Path(settings.VAR_DIR) / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_dispatcher_sees_a_rider_move_and_an_sos_arrive_and_acknowledges_it(
    portal: Portal, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    # Playwright's sync API runs an event loop in this thread; the few ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    now = timezone.now()
    city = CityFactory(
        code=f"BR{uuid.uuid4().hex[:6].upper()}", name="Browser city", center_lat=12.97, center_lon=77.59
    )
    dispatcher = UserFactory(username="dispatcher", is_staff=True)
    dispatcher.set_password("a-long-test-password")
    dispatcher.save(update_fields=["password"])
    rider = RiderFactory(
        city=city, name="Kiran Das", kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=now
    )
    DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=20))
    LocationLog.objects.create(rider=rider, recorded_at=now - timedelta(seconds=30), lat=12.9700, lon=77.5900)
    driver = {"Authorization": f"Token {rider_api_token(rider_id=rider.pk)}"}
    marker = f'.rider-icon[data-rider-id="{rider.pk}"]'

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{portal.url}/admin/login/?next=/dispatch/%3Fcity%3D{city.code}")
            page.fill("#id_username", "dispatcher")
            page.fill("#id_password", "a-long-test-password")
            page.click("input[type=submit]")
            page.wait_for_url(f"**/dispatch/?city={city.code}")
            expect(page.locator("body")).to_have_attribute("data-connection", "live")
            expect(page.locator("body")).to_have_attribute("data-synced-at", re.compile(".+"))
            expect(page.locator(marker)).to_have_attribute("data-lat", "12.97")

            moved = requests.post(
                f"{portal.url}/api/v1/driver/locations/",
                json={
                    "points": [
                        {"recorded_at": timezone.now().isoformat(), "lat": 12.9812, "lon": 77.6011, "heading": 45}
                    ]
                },
                headers=driver,
                timeout=10,
            )
            assert moved.status_code == 202, moved.text
            expect(page.locator(marker)).to_have_attribute("data-lat", "12.9812")
            expect(page.locator(marker)).to_have_attribute("data-lon", "77.6011")
            expect(page.locator(marker)).not_to_have_class(_has("is-stale"))

            raised = requests.post(
                f"{portal.url}/api/v1/driver/emergency/",
                json={"lat": 12.9812, "lon": 77.6011, "message": "Fell off the bike near the signal"},
                headers=driver,
                timeout=10,
            )
            assert raised.status_code == 201, raised.text
            alert_id = raised.json()["id"]
            row = page.locator(f'#alerts [data-alert-id="{alert_id}"]')
            expect(row).to_contain_text("Fell off the bike near the signal")
            expect(row).to_contain_text("Kiran Das")
            expect(page.locator("body")).to_have_class(_has("has-alerts"))

            screenshot = _artifact_path("dashboard-browser.png")
            page.screenshot(path=str(screenshot), full_page=True)
            record_property("screenshot", str(screenshot))
            print(f"\nscreenshot: {screenshot}")

            row.get_by_role("button", name="Acknowledge").click()
            expect(row).to_have_count(0)
            expect(page.locator("#messages")).to_contain_text(f"SOS #{alert_id} acknowledged.")

            # The server restarts. The page notices, reconnects by itself, and re-syncs what changed meanwhile.
            portal.stop()
            expect(page.locator("body")).to_have_attribute("data-connection", re.compile("offline|connecting"))
            missed = OrderFactory(city=city, external_ref=f"MISSED-{city.code}", is_flagged=True)
            portal.start()
            expect(page.locator("body")).to_have_attribute("data-connection", "live", timeout=RECONNECT_TIMEOUT_MS)
            expect(page.locator(f'#unassigned [data-order-id="{missed.pk}"]')).to_contain_text("needs a rider")
        finally:
            browser.close()

    alert = EmergencyAlert.objects.get(pk=alert_id)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by is not None
    assert alert.acknowledged_by.username == "dispatcher"


def _has(css_class: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(css_class)}(\s|$)")
