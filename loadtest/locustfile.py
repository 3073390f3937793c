"""FleetOps under load: drivers streaming GPS, working their orders and reading their wallet; partners pushing
orders; dispatchers holding the dashboard's websocket. Accounts come from ``loadtest/prepare.py``; the mix and
the numbers of users from ``loadtest/run.py`` (``make loadtest SCENARIO=heavy``).

Weights: 16 drivers : 3 partners : 1 dispatcher. Requests are named by route, so the report's lines are
endpoints, not URLs with ids.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import os
import random
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import websocket
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from PIL import Image
from urllib3 import encode_multipart_formdata

#: The event's name from a frame's first bytes (frames start with it): a whole json.loads of every order.changed
#: frame cost the load generator more CPU than the socket itself.
EVENT = re.compile(r'"event":\s*"([a-z_.]+)"')
ACCOUNTS = json.loads((Path(__file__).resolve().parent.parent / "var" / "loadtest" / "accounts.json").read_text())
CITY = ACCOUNTS["city"]
CENTER = ACCOUNTS["center"]
_next = {kind: itertools.count() for kind in ("riders", "partners", "dispatchers")}
_lock = threading.Lock()


def account(kind: str) -> dict[str, Any]:
    """Each simulated user takes the next account of its kind (round robin past the last)."""
    with _lock:
        index = next(_next[kind])
    pool = ACCOUNTS[kind]
    return pool[index % len(pool)]


def near(center: list[float], km: float) -> tuple[float, float]:
    return center[0] + random.uniform(-km, km) / 111, center[1] + random.uniform(-km, km) / 109


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


PHOTO = _photo()


# FastHttpUser (geventhttpclient) rather than HttpUser (requests): on a 2-core machine that also runs the portal,
# the load generator's own CPU shows up as latency in the report, so it is kept as small as Locust allows.


class Driver(FastHttpUser):
    """A rider's app: a GPS batch every 5 s or so, its orders now and then (stepping any it has), its wallet."""

    weight = 16
    wait_time = between(4, 6)

    def on_start(self) -> None:
        rider = account("riders")
        self.client.auth_header = f"Token {rider['token']}"
        self.position = near(CENTER, 5)
        # As the app does when a shift starts: a rider quiet since the accounts were prepared has been taken
        # off duty by the stale-rider job, and its points would be refused (422 not_on_duty).
        self.client.post("/api/v1/driver/duty/", json={"status": "ON"}, name="/driver/duty/")

    @task(10)
    def gps(self) -> None:
        points = []
        for _ in range(random.randint(1, 5)):
            lat, lon = self.position
            self.position = (lat + random.uniform(-3e-4, 3e-4), lon + random.uniform(-3e-4, 3e-4))
            points.append(
                {
                    "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "lat": round(self.position[0], 6),
                    "lon": round(self.position[1], 6),
                    "speed_kmh": round(random.uniform(0, 35), 1),
                    "heading_deg": random.randint(0, 359),
                    "accuracy_m": 8,
                    "battery_pct": 80,
                }
            )
            time.sleep(0.001)  # distinct recorded_at values
        self.client.post("/api/v1/driver/locations/", json={"points": points}, name="/driver/locations/")

    @task(2)
    def orders(self) -> None:
        with self.client.get("/api/v1/driver/orders/", name="/driver/orders/", catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}")
                return
            mine = answer.json().get("results", [])
        for order in mine[:1]:
            self.step(order)

    def step(self, order: dict[str, Any]) -> None:
        status = order["status"]
        if status == "ASSIGNED":
            self.send_status(order, {"status": "ACCEPTED", **order["pickup"]})
        elif status == "ACCEPTED":
            self.send_status(order, {"status": "PICKED_UP", **order["pickup"]})
        elif status == "PICKED_UP":
            self.send_status(order, {"status": "DELIVERED", **order["drop"]}, photo=PHOTO)

    def send_status(self, order: dict[str, Any], place: dict[str, Any], photo: bytes | None = None) -> None:
        """One step. A 404 or 409 is the app's list going stale between the read and the step (the offer
        expired and went to another rider, or a dispatcher moved the order): a right answer, not an error; it
        is counted on a line of its own."""
        url = f"/api/v1/driver/orders/{order['id']}/status/"
        body = {"status": place["status"], "lat": place["lat"], "lon": place["lon"]}
        kwargs: dict[str, Any] = {"json": body}
        if photo is not None:  # multipart, as the app uploads its proof photo
            fields: list[tuple[str, Any]] = [(key, str(value)) for key, value in body.items()]
            payload, content_type = encode_multipart_formdata([*fields, ("photo", ("proof.jpg", photo, "image/jpeg"))])
            kwargs = {"data": payload, "headers": {"Content-Type": content_type}}
        with self.client.post(url, name="/driver/orders/{id}/status/", catch_response=True, **kwargs) as answer:
            if answer.status_code in (404, 409):
                answer.success()
                count("stale order steps (404/409)")

    @task(1)
    def wallet(self) -> None:
        self.client.get("/api/v1/driver/wallet/", name="/driver/wallet/")


class Partner(FastHttpUser):
    """A partner's system: pushes an order every second or two, and lists its open orders now and then."""

    weight = 3
    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.client.auth_header = f"Token {account('partners')['token']}"

    @task(8)
    def push(self) -> None:
        pickup, drop = near(CENTER, 5), near(CENTER, 6)
        body = {
            "external_ref": f"LOAD-{uuid.uuid4().hex[:16]}",
            "city": CITY,
            "pickup": {"lat": round(pickup[0], 6), "lon": round(pickup[1], 6), "address": "Pickup"},
            "drop": {"lat": round(drop[0], 6), "lon": round(drop[1], 6), "address": "Drop"},
            "delivery_fee": "45.00",
            "cod_amount": random.choice(["0.00", "250.00"]),
            "metadata": {"items": [{"sku": "LOAD", "qty": 1}]},
        }
        self.client.post("/api/v1/orders/", json=body, name="/orders/")

    @task(1)
    def open_orders(self) -> None:
        self.client.get("/api/v1/orders/", params={"status": "CREATED"}, name="/orders/?status=")


class Dispatcher(FastHttpUser):
    """The dashboard: its websocket held open the whole run (messages counted, reconnected if dropped), the
    state view re-read every half minute as the page does after a reconnect."""

    weight = 1
    wait_time = between(25, 35)

    def on_start(self) -> None:
        self.session = account("dispatchers")["session"]
        self.socket_reader = gevent.spawn(self.hold_socket)

    def on_stop(self) -> None:
        self.socket_reader.kill(block=False)

    def hold_socket(self) -> None:
        host = self.host.split("://", 1)[1]
        scheme = "wss" if self.host.startswith("https") else "ws"
        while True:
            started = time.perf_counter()
            try:
                sock = websocket.create_connection(
                    f"{scheme}://{host}/ws/dispatch/{CITY}/",
                    cookie=f"sessionid={self.session}",
                    origin=self.host,
                    timeout=60,
                )
            except Exception as error:  # reported as a failed connect, then retried
                fire("WS", "connect ws/dispatch/", started, 0, error)
                gevent.sleep(2)
                continue
            fire("WS", "connect ws/dispatch/", started, 0, None)
            try:
                while True:
                    frame = sock.recv()
                    event = EVENT.search(frame[:80]) if isinstance(frame, str) else None
                    count(f"websocket {event.group(1) if event else '?'}")
            except Exception as error:
                fire("WS", "dropped ws/dispatch/", time.perf_counter(), 0, error)
            finally:
                sock.close()
            gevent.sleep(random.uniform(1, 3))  # as the page does: reconnect after a pause, not in a loop

    @task
    def state(self) -> None:
        cookie = {"Cookie": f"sessionid={self.session}"}
        self.client.get("/dispatch/state/", params={"city": CITY}, headers=cookie, name="/dispatch/state/")


#: What is not a request with a latency (websocket messages received, stale steps), counted per name; written
#: at the end of the run to $LOADTEST_COUNTS for the report (as requests they would dilute its percentiles).
COUNTS: collections.Counter[str] = collections.Counter()


def count(name: str) -> None:
    COUNTS[name] += 1


@events.test_stop.add_listener
def _write_counts(**_: Any) -> None:
    if os.environ.get("LOADTEST_COUNTS"):
        Path(os.environ["LOADTEST_COUNTS"]).write_text(json.dumps(dict(COUNTS)))


def fire(kind: str, name: str, started: float, length: int, error: Exception | None) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=error,
        context={},
    )
