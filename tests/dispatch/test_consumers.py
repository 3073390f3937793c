"""Websockets of the dashboard, the rider's app and the tracking page, against the real ASGI stack, the real
Redis channel layer and PostgreSQL: who may connect, what each socket hears, and the coalesced fan-out."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing.websocket import WebsocketCommunicator  # channels.testing itself imports daphne
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.asgi import application
from config.realtime import dispatch_group, publish, rider_group
from dispatch import coalesce
from fleet import live
from fleet import services as fleet_services
from fleet.models import City
from orders.events import order_changed, order_payload
from orders.models import Order, OrderStatus
from riders import services as rider_services
from riders import tasks as rider_tasks
from riders.models import DutyStatus, KycStatus, Rider
from tests.fleet.factories import CityFactory
from tests.orders.factories import AssignedOrderFactory
from tests.riders.factories import RiderFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _fast_flush(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DISPATCH_FLUSH_MS = 200
    settings.SOS_ESCALATE_AFTER_S = 60


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An SOS's escalation is not queued on a broker some worker might be reading."""
    monkeypatch.setattr(rider_tasks.sos_escalate_task, "apply_async", lambda **kwargs: None)


@pytest.fixture
def city() -> City:
    return CityFactory(code=f"T{uuid.uuid4().hex[:8].upper()}")  # groups no other test run listens on


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Runs an async scenario from a sync test: the consumers' database calls come back to this thread and
    its connection (asgiref's thread-sensitive mode), so they see what the test created."""
    return async_to_sync(scenario)()


def session_cookie(user) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def staff() -> Any:
    return UserFactory(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)


def dashboard(city_code: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/dispatch/{city_code}/", headers=[ORIGIN, *headers])


def driver(path: str = "/ws/driver/", *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=list(headers))


def token_header(rider: Rider) -> tuple[bytes, bytes]:
    return (b"authorization", f"Token {Token.objects.create(user=rider.user).key}".encode())


async def refused_with(communicator: WebsocketCommunicator) -> int | None:
    connected, _ = await communicator.connect()
    assert connected  # accepted first, so the browser sees the close code
    closing = await communicator.receive_output(timeout=5)
    assert closing["type"] == "websocket.close"
    return closing["code"]


async def frames(communicator: WebsocketCommunicator, *, wait_s: float = 1.0) -> list[dict[str, Any]]:
    """Every frame the socket got until nothing more came for ``wait_s``. (A ``receive_from`` that times out
    cancels the application: ``receive_nothing`` waits without killing it.)"""
    received = []
    while not await communicator.receive_nothing(timeout=wait_s):
        received.append(json.loads(await communicator.receive_from()))
    return received


async def next_event(communicator: WebsocketCommunicator, event: str, *, timeout: float = 5) -> dict[str, Any]:
    """The payload of the next frame of that event, skipping others (the periodic ``stats``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await communicator.receive_nothing(timeout=0.05):
            continue
        frame = json.loads(await communicator.receive_from())
        if frame["event"] == event:
            return frame["payload"]
    raise AssertionError(f"no {event} within {timeout} s")


def move(rider: Rider, *, seconds_ago: float, lat: float) -> bool:
    return fleet_services.live_position_advance(
        rider_id=rider.pk,
        city_code=rider.city.code,
        is_on_duty=True,
        point=fleet_services.Point(
            recorded_at=timezone.now() - timedelta(seconds=seconds_ago), lat=lat, lon=77.59, heading_deg=90
        ),
    )


def announce(order_id: int) -> None:
    """``order.changed`` of the order as it is stored, as a transition publishes it after commit."""
    order_changed(order_payload(Order.objects.select_related("city").get(pk=order_id)))


# --- the dashboard: who may connect ------------------------------------------------------------------


def test_an_anonymous_dashboard_socket_is_closed_with_4401(city):
    async def scenario() -> int | None:
        return await refused_with(dashboard(city.code))

    assert run(scenario) == 4401


def test_a_dashboard_socket_of_a_user_who_is_not_staff_is_closed_with_4403(city):
    cookie = session_cookie(UserFactory(username=f"rider-{uuid.uuid4().hex[:8]}"))

    async def scenario() -> int | None:
        return await refused_with(dashboard(city.code, cookie))

    assert run(scenario) == 4403


def test_a_dashboard_socket_of_an_unknown_city_is_closed_with_4404():
    cookie = session_cookie(staff())

    async def scenario() -> int | None:
        return await refused_with(dashboard("NOWHERE", cookie))

    assert run(scenario) == 4404


def test_a_dashboard_socket_opened_from_another_origin_is_refused(city):
    cookie = session_cookie(staff())

    async def scenario() -> bool:
        communicator = WebsocketCommunicator(
            application, f"/ws/dispatch/{city.code}/", headers=[(b"origin", b"https://evil.example"), cookie]
        )
        connected, _ = await communicator.connect()
        return connected

    assert run(scenario) is False


# --- the dashboard: what it hears ---------------------------------------------------------------------


def test_the_dashboard_hears_an_order_change_at_once(city):
    cookie = session_cookie(staff())
    order = AssignedOrderFactory(city=city)

    async def scenario() -> dict[str, Any]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        # The socket is open only once the relay hears the group: nothing published from here on is missed.
        assert coalesce.flusher().live[city.code].is_set()
        await sync_to_async(announce)(order.pk)
        payload = await next_event(viewer, "order.changed", timeout=2)
        await viewer.disconnect()
        return payload

    payload = run(scenario)
    assert payload["order_id"] == order.pk
    assert payload["status"] == OrderStatus.ASSIGNED
    assert set(payload) == {"order_id", "external_ref", "status", "rider_id", "city", "is_flagged", "updated_at"}


def test_the_dashboard_hears_an_sos_at_once_and_its_acknowledgement(city):
    dispatcher = staff()
    cookie = session_cookie(dispatcher)
    rider = RiderFactory(city=city)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        alert = await sync_to_async(rider_services.emergency_alert_raise)(rider=rider, lat=12.9, lon=77.6)
        raised = await next_event(viewer, "sos.raised", timeout=2)
        await sync_to_async(rider_services.emergency_alert_acknowledge)(alert_id=alert.pk, user=dispatcher)
        acknowledged = await next_event(viewer, "sos.acknowledged", timeout=2)
        await viewer.disconnect()
        return raised, acknowledged, alert.pk

    raised, acknowledged, alert_id = run(scenario)
    assert raised["alert_id"] == alert_id
    assert raised["rider_name"] == rider.name
    assert raised["escalated"] is False
    assert acknowledged["alert_id"] == alert_id
    assert acknowledged["acknowledged_by"] == dispatcher.username


def test_an_sos_goes_to_the_dashboard_at_once_while_positions_wait_for_their_flush(city, settings):
    settings.DISPATCH_FLUSH_MS = 10_000  # the first flush turn is 2 s away: nothing coalesced goes out before
    cookie = session_cookie(staff())
    moving, in_danger = RiderFactory(city=city), RiderFactory(city=city)

    async def scenario() -> tuple[float, list[str]]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        loop = asyncio.get_running_loop()
        await sync_to_async(move)(moving, seconds_ago=1, lat=12.95)
        raised_at = loop.time()
        await sync_to_async(rider_services.emergency_alert_raise)(rider=in_danger, lat=12.9, lon=77.6)
        await next_event(viewer, "sos.raised", timeout=1.5)
        took = loop.time() - raised_at
        events = [frame["event"] for frame in await frames(viewer, wait_s=0.3)]
        await viewer.disconnect()
        return took, events

    took, later = run(scenario)
    assert took < 1.5
    assert "rider.moved" not in later  # the position was pending all along: the SOS did not go with a flush


def test_an_escalated_sos_reaches_the_dashboards_of_other_cities(city):
    cookie = session_cookie(staff())
    rider = RiderFactory(city=CityFactory(code=f"T{uuid.uuid4().hex[:8].upper()}"))
    alert = rider_services.emergency_alert_raise(rider=rider, lat=None, lon=None)

    async def scenario() -> dict[str, Any]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        await sync_to_async(rider_services.emergency_alert_escalate)(
            alert_id=alert.pk, now=alert.raised_at + timedelta(seconds=61)
        )
        payload = await next_event(viewer, "sos.raised", timeout=2)
        await viewer.disconnect()
        return payload

    payload = run(scenario)
    assert (payload["alert_id"], payload["escalated"]) == (alert.pk, True)


def test_the_dashboard_gets_the_citys_kpis(city):
    cookie = session_cookie(staff())
    RiderFactory(city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON)

    async def scenario() -> dict[str, Any]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        payload = await next_event(viewer, "stats", timeout=3)
        await viewer.disconnect()
        return payload

    stats = run(scenario)
    assert set(stats) >= {"active_riders", "riders_on_duty", "orders_today", "delivered_today", "distance_today_km"}
    assert stats["riders_on_duty"] == 1


def test_many_points_become_one_rider_moved_per_flush_with_each_riders_newest_point(city):
    cookie = session_cookie(staff())
    first, second = RiderFactory(city=city), RiderFactory(city=city)
    for i in range(20):  # oldest first: each moves the live position forward
        move(first, seconds_ago=40 - i, lat=12.90 + i / 1000)
    for i in range(5):
        move(second, seconds_ago=40 - i, lat=13.00 + i / 1000)

    async def scenario() -> list[dict[str, Any]]:
        viewer = dashboard(city.code, cookie)
        assert (await viewer.connect())[0]
        received = await frames(viewer, wait_s=1.0)
        await viewer.disconnect()
        return received

    moved = [frame["payload"] for frame in run(scenario) if frame["event"] == "rider.moved"]
    assert len(moved) == 1
    by_rider = {entry["rider_id"]: entry for entry in moved[0]["riders"]}
    assert len(moved[0]["riders"]) == 2
    assert by_rider[first.pk]["lat"] == pytest.approx(12.919)
    assert by_rider[second.pk]["lat"] == pytest.approx(13.004)
    assert set(by_rider[first.pk]) == {
        "rider_id",
        "lat",
        "lon",
        "recorded_at",
        "speed_kmh",
        "heading_deg",
        "battery_pct",
    }


def test_points_arriving_while_viewers_watch_go_out_flush_by_flush_never_faster_than_the_period(city, settings):
    cookie = session_cookie(staff())
    rider = RiderFactory(city=city)

    async def scenario() -> list[tuple[float, list[dict[str, Any]]]]:
        viewers = [dashboard(city.code, cookie) for _ in range(3)]
        for viewer in viewers:
            assert (await viewer.connect())[0]
        loop = asyncio.get_running_loop()
        for i in range(30):  # a point every 20 ms for 0.6 s
            await sync_to_async(move)(rider, seconds_ago=30 - i, lat=12.9 + i / 1000)
            await asyncio.sleep(0.02)
        heard: list[tuple[float, list[dict[str, Any]]]] = []
        deadline = loop.time() + 1.0
        while loop.time() < deadline:
            if await viewers[0].receive_nothing(timeout=0.02):
                continue
            frame = json.loads(await viewers[0].receive_from())
            if frame["event"] == "rider.moved":
                heard.append((loop.time(), frame["payload"]["riders"]))
        others = [[f for f in await frames(v, wait_s=0.2) if f["event"] == "rider.moved"] for v in viewers[1:]]
        for viewer in viewers:
            await viewer.disconnect()
        assert all(len(got) >= 1 for got in others)
        return heard

    heard = run(scenario)
    assert 1 <= len(heard) <= 5  # 30 points in ~0.8 s at a 200 ms period, not 30 messages
    assert all(len(riders) == 1 for _, riders in heard)
    assert heard[-1][1][0]["lat"] == pytest.approx(12.929)


def test_two_processes_flushing_a_city_at_once_publish_its_batch_once(city):
    rider = RiderFactory(city=city)
    move(rider, seconds_ago=5, lat=12.95)

    async def scenario() -> list[int]:
        one, other = coalesce.Flusher(), coalesce.Flusher()
        try:
            return list(await asyncio.gather(one.flush(city.code), other.flush(city.code)))
        finally:
            for flusher in (one, other):
                if flusher._redis is not None:
                    await flusher._redis.aclose()

    assert sorted(run(scenario)) == [0, 1]
    assert live._redis().exists(live.pending_key(city.code)) == 0


# --- the rider's app ---------------------------------------------------------------------------------


def test_a_driver_socket_without_a_valid_token_is_closed_with_4401():
    async def scenario() -> list[int | None]:
        return [
            await refused_with(driver()),
            await refused_with(driver("/ws/driver/", (b"authorization", b"Token not-a-token"))),
            await refused_with(driver("/ws/driver/?token=not-a-token")),
        ]

    assert run(scenario) == [4401, 4401, 4401]


def test_a_driver_hears_its_gps_interval_on_connect_and_only_its_own_offers(city):
    mine, theirs = RiderFactory(city=city), RiderFactory(city=city)
    header = token_header(mine)
    their_key = Token.objects.create(user=theirs.user).key

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        me = driver("/ws/driver/", header)
        them = driver(f"/ws/driver/?token={their_key}")
        for socket in (me, them):
            assert (await socket.connect())[0]
        await sync_to_async(publish)(rider_group(mine.pk), "order.offered", {"offer_id": 1, "order_id": 11})
        await sync_to_async(publish)(rider_group(theirs.pk), "order.offered", {"offer_id": 2, "order_id": 22})
        heard = await frames(me, wait_s=0.5), await frames(them, wait_s=0.3)
        for socket in (me, them):
            await socket.disconnect()
        return heard

    mine_heard, theirs_heard = run(scenario)
    assert mine_heard == [
        {"event": "gps.interval", "payload": {"seconds": 5}},
        {"event": "order.offered", "payload": {"offer_id": 1, "order_id": 11}},
    ]
    assert [frame["payload"].get("offer_id") for frame in theirs_heard] == [None, 2]


def test_a_driver_hears_its_order_changes(city):
    order = AssignedOrderFactory(city=city)
    header = token_header(order.rider)

    async def scenario() -> dict[str, Any]:
        me = driver("/ws/driver/", header)
        assert (await me.connect())[0]
        await sync_to_async(announce)(order.pk)
        payload = await next_event(me, "order.changed", timeout=2)
        await me.disconnect()
        return payload

    assert run(scenario)["order_id"] == order.pk


def test_a_driver_in_sos_is_told_to_send_gps_every_two_seconds_until_a_dispatcher_takes_it(city):
    rider = RiderFactory(city=city)
    header = token_header(rider)
    dispatcher = staff()

    async def scenario() -> list[int]:
        me = driver("/ws/driver/", header)
        assert (await me.connect())[0]
        intervals = [(await next_event(me, "gps.interval"))["seconds"]]
        alert = await sync_to_async(rider_services.emergency_alert_raise)(rider=rider, lat=None, lon=None)
        intervals.append((await next_event(me, "gps.interval", timeout=2))["seconds"])
        await me.disconnect()
        again = driver("/ws/driver/", header)  # an app reconnecting mid-SOS hears the fast interval
        assert (await again.connect())[0]
        intervals.append((await next_event(again, "gps.interval"))["seconds"])
        await sync_to_async(rider_services.emergency_alert_acknowledge)(alert_id=alert.pk, user=dispatcher)
        intervals.append((await next_event(again, "gps.interval", timeout=2))["seconds"])
        await again.disconnect()
        return intervals

    assert run(scenario) == [5, 2, 2, 5]


# --- the tracking page -------------------------------------------------------------------------------


def test_a_tracking_socket_needs_the_orders_own_token(city):
    order, other = AssignedOrderFactory(city=city), AssignedOrderFactory(city=city)

    async def scenario() -> list[int | None]:
        return [
            await refused_with(WebsocketCommunicator(application, f"/ws/orders/{order.pk}/track/")),
            await refused_with(
                WebsocketCommunicator(application, f"/ws/orders/{order.pk}/track/?token={other.tracking_token}")
            ),
        ]

    assert run(scenario) == [4401, 4401]


def test_a_tracking_page_hears_its_riders_moves_and_its_orders_changes_only(city):
    order = AssignedOrderFactory(city=city)
    stranger = RiderFactory(city=city)

    async def scenario() -> list[dict[str, Any]]:
        page = WebsocketCommunicator(application, f"/ws/orders/{order.pk}/track/?token={order.tracking_token}")
        assert (await page.connect())[0]
        await sync_to_async(move)(stranger, seconds_ago=3, lat=13.1)
        await sync_to_async(move)(order.rider, seconds_ago=2, lat=12.97)
        await sync_to_async(announce)(order.pk)
        heard = await frames(page, wait_s=0.7)
        await page.disconnect()
        return heard

    heard = run(scenario)
    assert [frame["event"] for frame in heard] == ["rider.moved", "order.changed"]
    assert [entry["rider_id"] for entry in heard[0]["payload"]["riders"]] == [order.rider_id]
    assert heard[0]["payload"]["riders"][0]["lat"] == 12.97
    assert heard[1]["payload"]["order_id"] == order.pk


def test_a_tracking_page_stops_hearing_the_rider_once_the_order_is_delivered(city):
    order = AssignedOrderFactory(city=city)

    async def scenario() -> list[str]:
        page = WebsocketCommunicator(application, f"/ws/orders/{order.pk}/track/?token={order.tracking_token}")
        assert (await page.connect())[0]
        await sync_to_async(Order.objects.filter(pk=order.pk).update)(
            status=OrderStatus.DELIVERED, delivered_at=timezone.now()
        )
        await sync_to_async(announce)(order.pk)
        await asyncio.sleep(0.2)
        await sync_to_async(move)(order.rider, seconds_ago=1, lat=12.99)
        heard = await frames(page, wait_s=0.5)
        await page.disconnect()
        return [frame["event"] for frame in heard]

    assert run(scenario) == ["order.changed"]


def test_dispatch_group_names_are_per_city():
    assert dispatch_group("blr") == "dispatch.BLR"


def test_open_sockets_are_counted_in_the_metrics_and_refused_ones_are_not(city):
    from config import metrics

    rider = RiderFactory(city=city)
    header = token_header(rider)
    gauge = metrics.WEBSOCKETS_OPEN.labels(kind="driver")

    async def scenario() -> list[float]:
        seen = [gauge._value.get()]
        socket = driver("/ws/driver/", header)
        assert (await socket.connect())[0]
        await frames(socket, wait_s=0.2)
        seen.append(gauge._value.get())
        await refused_with(driver("/ws/driver/?token=not-a-token"))
        seen.append(gauge._value.get())
        await socket.disconnect()
        seen.append(gauge._value.get())
        return seen

    before, open_, after_refusal, closed = run(scenario)
    assert (open_ - before, after_refusal - before, closed - before) == (1, 1, 0)
