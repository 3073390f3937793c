"""The one module that publishes to the channel layer. Group names come from the functions here.

Publishing happens after commit (callers use ``transaction.on_commit``). Every payload is
round-tripped through JSON first, so an event that could not reach a browser fails where it is made.

Callers are synchronous (services, Celery tasks). ``async_to_sync`` would start an event loop per call,
and channels-redis keeps its connections per loop, so every event would open a new Redis connection
(measured 2.4 ms a publish). Instead each process keeps one event loop on a daemon thread and publishes
through it: the connections live as long as the process (0.5 ms a publish).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import get_channel_layer

#: How long a publish may wait for the channel layer before it fails (Redis unreachable).
PUBLISH_TIMEOUT_S = 2.0


def dispatch_group(city_code: str) -> str:
    """Dispatchers watching one city."""
    return f"dispatch.{city_code.upper()}"


def rider_group(rider_id: int) -> str:
    """One rider's app (offers, changes to the rider's orders), over ``ws/driver/``."""
    return f"rider.{rider_id}"


def order_track_group(order_id: int) -> str:
    """Viewers of one order's tracking page."""
    return f"order.{order_id}.track"


class _LoopThread:
    """A process's publishing event loop, started on first use and again in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_publisher = _LoopThread()


def layer_message(event_type: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The channel-layer message of an event: a consumer's handler is named by ``type`` (``rider_moved``)."""
    return {"type": event_type.replace(".", "_"), "event": event_type, "payload": payload, **extra}


async def publish_async(group: str, event_type: str, payload: dict[str, Any], *, frame_id: str = "") -> None:
    """Sends one event to a group from a coroutine (the dashboard's flusher). ``payload`` must be JSON-ready.

    A ``frame_id`` names this message's browser frame: a process's consumers encode the frame once between
    them instead of once per viewer (``frame_text``).
    """
    layer = get_channel_layer()
    if layer is None:
        return
    extra = {"frame_id": frame_id} if frame_id else {}
    await layer.group_send(group, layer_message(event_type, payload, **extra))


#: Frames a process encoded lately, by ``frame_id``: a flush reaches every viewer of the process within
#: milliseconds, so a short memory serves them all.
_FRAMES: dict[str, str] = {}
_FRAMES_KEPT = 256


def frame_text(message: dict[str, Any]) -> str:
    """The websocket text frame of a layer message: ``{"event": ..., "payload": ...}``.

    Encoded once per ``frame_id`` per process: a thousand viewers of a city get one flush of its positions, tens
    of kilobytes, and encoding it for each of them was the most of the fan-out's cost.
    """
    frame_id = message.get("frame_id")
    if frame_id:
        text = _FRAMES.get(frame_id)
        if text is None:
            text = json.dumps({"event": message["event"], "payload": message["payload"]})
            if len(_FRAMES) >= _FRAMES_KEPT:
                _FRAMES.pop(next(iter(_FRAMES)))
            _FRAMES[frame_id] = text
        return text
    return json.dumps({"event": message["event"], "payload": message["payload"]})


def publish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    """Sends one event to a group and waits until the layer took it; raises what the layer raised.

    For synchronous callers only (a coroutine would block its own loop here: await the layer instead).
    """
    publish_many([(group, event_type, payload)])


def publish_many(events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Sends several ``(group, event_type, payload)`` events in one hand-off to the publishing loop; waits for
    all of them and raises the first failure.

    One after another inside the loop, not gathered: with many threads publishing at once, concurrent sends
    would each hold a connection of the layer's pool (redis-py's limit is 100) and fail past it."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    messages = [(group, layer_message(kind, json.loads(json.dumps(payload)))) for group, kind, payload in events]

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    future = asyncio.run_coroutine_threadsafe(send_all(), _publisher.loop())
    try:
        future.result(timeout=PUBLISH_TIMEOUT_S)
    except TimeoutError:
        future.cancel()
        raise
