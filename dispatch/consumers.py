"""Websockets: the dispatcher dashboard, the rider's app and the public tracking page.

Each authenticates, joins groups named by ``config.realtime`` and forwards the events of its groups as text
frames ``{"event": ..., "payload": ...}``. A refused socket is accepted and then closed with its code
(4401 not authenticated, 4403 not allowed, 4404 no such city or order): a socket closed before it is
accepted reaches a browser as a failed handshake, without the code, and the page must tell "log in again"
from "the server restarts" to reconnect or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

from channels import DEFAULT_CHANNEL_LAYER
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from config import metrics
from config.realtime import dispatch_group, frame_text, order_track_group, rider_group
from dispatch import tracking
from dispatch.coalesce import flusher
from fleet import live
from fleet import selectors as fleet_selectors
from orders import selectors as order_selectors
from orders.models import ACTIVE_STATUSES
from riders import events as rider_events
from riders import selectors as rider_selectors

NOT_AUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
TOO_SLOW = 4408

#: Frames a dashboard socket may have waiting (a flush every 500 ms: half a minute behind).
OUTBOX_MAX = 64

_ACTIVE = {str(status) for status in ACTIVE_STATUSES}


class _Forwarding(AsyncWebsocketConsumer):
    groups_joined: list[str]
    #: The ``kind`` label of ``fleetops_websockets_open`` (``/metrics``).
    kind = ""
    is_counted = False

    async def refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def accept_counted(self) -> None:
        """Accepts the socket and counts it open until it disconnects (a refused socket is not counted)."""
        await self.accept()
        metrics.WEBSOCKETS_OPEN.labels(kind=self.kind).inc()
        self.is_counted = True

    async def join(self, *groups: str) -> None:
        self.groups_joined = list(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.is_counted:
            self.is_counted = False
            metrics.WEBSOCKETS_OPEN.labels(kind=self.kind).dec()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def forward(self, message: dict[str, Any]) -> None:
        await self.send(text_data=frame_text(message))

    async def send_event(self, event: str, payload: dict[str, Any]) -> None:
        await self.forward({"event": event, "payload": payload})


class DispatchConsumer(_Forwarding):
    """``ws/dispatch/<city>/``: a staff member's dashboard of one city.

    Its frames come from the process's relay of the city (``dispatch.coalesce.Flusher``) through an outbox a
    writer task drains: a viewer whose outbox holds ``OUTBOX_MAX`` frames cannot keep up, and is closed with
    4408 (the page reconnects and re-syncs) rather than hold memory without bound.
    """

    kind = "dispatch"
    city_code = ""
    outbox: asyncio.Queue[str]
    writer: asyncio.Task[None] | None = None
    is_joined = False

    @property
    def channel_layer_alias(self) -> str:
        """No channel of its own under the relay (``DISPATCH_FANOUT = "hub"``): the relay reaches it in memory,
        which spares a subscription (pub/sub) or a receive loop (classic layer) per viewer."""
        return DEFAULT_CHANNEL_LAYER if settings.DISPATCH_FANOUT == "group" else "dispatch-relay-needs-none"

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(NOT_AUTHENTICATED)
        if not user.is_staff:
            return await self.refuse(FORBIDDEN)
        city = await database_sync_to_async(fleet_selectors.city_active)(code=self.scope["url_route"]["kwargs"]["city"])
        if city is None:
            return await self.refuse(NOT_FOUND)
        self.city_code = city.code
        if not flusher().is_hub():
            await self.join(dispatch_group(city.code))
        # The relay first, the socket then: once the page sees the socket open (and re-reads the state), every
        # later event reaches it. Frames relayed meanwhile wait in the outbox for the writer.
        self.outbox = asyncio.Queue()
        await flusher().join(city.code, self)
        self.is_joined = True
        await self.accept_counted()
        self.writer = asyncio.get_running_loop().create_task(self.write())
        try:
            stats = await flusher().stats_latest(city.code)
        except RedisError:
            stats = None
        if stats is not None:
            self.push(json.dumps({"event": "stats", "payload": stats}))

    def push(self, text: str) -> None:
        if self.writer is not None and self.writer.done():
            return  # closing, or the socket is gone
        if self.outbox.qsize() >= OUTBOX_MAX:
            if self.writer is not None:
                self.writer.cancel()
            asyncio.get_running_loop().create_task(self.abandon(TOO_SLOW))
            return
        self.outbox.put_nowait(text)  # before the socket opens too: the writer sends it first

    async def write(self) -> None:
        try:
            while True:
                await self.send(text_data=await self.outbox.get())
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away mid-send: stop being relayed to
            await self.abandon(None)

    async def abandon(self, code: int | None) -> None:
        """Stops relaying to this socket and closes it (``code``) if it is still open."""
        await self.leave_relay()
        if code is not None:
            with contextlib.suppress(Exception):
                await self.close(code=code)

    async def leave_relay(self) -> None:
        if self.is_joined:
            self.is_joined = False
            await flusher().leave(self.city_code, self)

    async def disconnect(self, code: int) -> None:
        await self.leave_relay()
        if self.writer is not None:
            self.writer.cancel()
        await super().disconnect(code)

    async def forward(self, message: dict[str, Any]) -> None:
        self.push(frame_text(message))  # DISPATCH_FANOUT = "group": in order with the relay's frames

    rider_moved = order_changed = sos_raised = sos_acknowledged = stats = forward


class DriverConsumer(_Forwarding):
    """``ws/driver/``: the rider's app (``dispatch.auth.DriverTokenAuthMiddleware`` put ``rider_id`` in the
    scope): its offers, changes to its orders, and how often to send GPS."""

    kind = "driver"

    async def connect(self) -> None:
        rider_id = self.scope.get("rider_id")
        if rider_id is None:
            return await self.refuse(NOT_AUTHENTICATED)
        await self.join(rider_group(rider_id))
        await self.accept_counted()
        seconds = await database_sync_to_async(rider_selectors.rider_gps_interval_s)(rider_id=rider_id)
        await self.send_event("gps.interval", rider_events.gps_interval_payload(seconds))

    order_offered = order_changed = gps_interval = _Forwarding.forward


class TrackConsumer(_Forwarding):
    """``ws/orders/<id>/track/?token=<Order.tracking_token>``: one trip's public tracking page. Forwards the
    order's changes, and its rider's moves only while the order is active with that rider."""

    kind = "track"
    rider_id: int | None = None
    is_active = False

    async def connect(self) -> None:
        order_id = self.scope["url_route"]["kwargs"]["order_id"]
        token = _query_value(self.scope, "token")
        if token is None or await database_sync_to_async(tracking.order_id_from_token)(token) != order_id:
            return await self.refuse(NOT_AUTHENTICATED)
        order = await database_sync_to_async(order_selectors.order_detail)(order_id=order_id, created_by_id=None)
        if order is None:
            return await self.refuse(NOT_FOUND)
        self.order_id = order_id
        await self.join(order_track_group(order_id))
        await self.accept_counted()
        await self.follow(order.rider_id, str(order.status))

    async def follow(self, rider_id: int | None, status: str) -> None:
        """Watches the rider's moves (``live.track_watch``) while the order is active with it."""
        self.rider_id, self.is_active = rider_id, status in _ACTIVE
        if self.rider_id is not None and self.is_active:
            # On a Redis failure: no live moves until the next change renews the watch; the page has the trip.
            with contextlib.suppress(RedisError):
                await database_sync_to_async(live.track_watch, thread_sensitive=False)(
                    rider_id=self.rider_id, order_id=self.order_id
                )

    async def order_changed(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        await self.follow(payload["rider_id"], payload["status"])
        await self.forward(message)

    async def rider_moved(self, message: dict[str, Any]) -> None:
        if not self.is_active:
            return
        riders = [entry for entry in message["payload"]["riders"] if entry["rider_id"] == self.rider_id]
        if riders:
            await self.send_event("rider.moved", {"riders": riders})


def _query_value(scope: dict[str, Any], name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    return values[0] if values else None
