"""Coalesced fan-out of rider positions to the dispatcher dashboards, and their periodic KPIs.

Ingest keeps only each rider's newest point in the city's pending hash (``fleet.live.position_advance``:
``HSET live:pending:<CITY> <rider> <entry>``, in the script that moves the live position). Every ASGI process
that has dashboard viewers of a city runs one flusher task (per event loop) which, every fifth of
``DISPATCH_FLUSH_MS``, asks Redis for the city's flush turn: one script takes a lock that lives
``DISPATCH_FLUSH_MS`` (``SET NX PX``) and, only if it got it, reads and deletes the pending hash atomically.
So whatever the number of processes, exactly one of them publishes each batch, at most once per
``DISPATCH_FLUSH_MS`` per city, and no point is published twice or lost between a read and a delete.

The batch goes to the city's dispatch group as one ``rider.moved`` (``{"riders": [...]}``): one message per
viewer per flush, however many GPS points arrived. The process that wins the ``DISPATCH_STATS_S`` stats turn
also computes the city's KPIs (``dispatch.selectors.kpis``), publishes ``stats`` and keeps them in Redis for
viewers who connect in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from typing import Any, Protocol

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from config.realtime import dispatch_group, frame_text, publish_async
from fleet.live import pending_key

logger = logging.getLogger(__name__)

# KEYS: flush lock, pending hash, stats lock. ARGV: flush period ms, stats period ms.
# Returns nil when another process has this turn; else {stats due (1/0), rider, entry, rider, entry, ...}.
_FLUSH_TURN = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
    return false
end
local stats_due = 0
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then
    stats_due = 1
end
local pending = redis.call('HGETALL', KEYS[2])
if #pending > 0 then
    redis.call('DEL', KEYS[2])
end
table.insert(pending, 1, stats_due)
return pending
"""

#: How many lock attempts a flusher makes per flush period: the lag a batch can gain waiting for a tick.
TICKS_PER_FLUSH = 5
#: Pause before a relay receives again after a failure.
RELAY_RETRY_S = 0.2
#: How long a viewer's join waits, at most, for its city's new relay to hear the group.
RELAY_CONFIRM_S = 2.0


def flush_lock_key(city_code: str) -> str:
    return cache.make_key(f"live:flush:{city_code.upper()}")


def stats_lock_key(city_code: str) -> str:
    return cache.make_key(f"live:stats-turn:{city_code.upper()}")


def stats_key(city_code: str) -> str:
    return cache.make_key(f"live:stats:{city_code.upper()}")


class Viewer(Protocol):
    """A dashboard socket of this process (``dispatch.consumers.DispatchConsumer``)."""

    def push(self, text: str) -> None:
        """Queues a frame for the socket; never waits (a slow socket must not hold the others back)."""


class Flusher:
    """The dashboards of one event loop (one per ASGI process): the flush task, and the relay of each city.

    Runs while the loop has dashboard viewers, for their cities only. With ``DISPATCH_FANOUT = "hub"`` (the
    default) the process joins each city's dispatch group once, on a channel of its own, and relays every message
    of the group to its viewers of that city: the frame is decoded and encoded once per process, and each viewer
    costs one queued write. With ``"group"`` every viewer's consumer joins the group itself (Channels' usual way:
    the layer delivers, decodes and dispatches a copy per viewer), kept to measure the difference (README).
    """

    def __init__(self) -> None:
        self.viewers: dict[str, set[Viewer]] = {}
        self.relays: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.task: asyncio.Task[None] | None = None
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._stats: set[asyncio.Task[None]] = set()
        #: Per city, set once the relay has heard its own probe through the group: from then on, a message
        #: published to the group reaches this process (a pub/sub subscription takes effect asynchronously).
        self.live: dict[str, asyncio.Event] = {}
        self._probes: dict[str, asyncio.Event] = {}

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.from_url(str(settings.CACHES["default"]["LOCATION"]))
            self._script = self._redis.register_script(_FLUSH_TURN)
        return self._redis

    @staticmethod
    def is_hub() -> bool:
        return bool(settings.DISPATCH_FANOUT == "hub")

    async def join(self, city_code: str, viewer: Viewer) -> None:
        code = city_code.upper()
        members = self.viewers.setdefault(code, set())
        is_first = not members
        members.add(viewer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(), name="dispatch-flusher")
        if is_first and self.is_hub():
            layer = get_channel_layer()
            assert layer is not None
            channel = await layer.new_channel()
            task = asyncio.get_running_loop().create_task(self.relay(code, channel), name=f"dispatch-relay-{code}")
            task.add_done_callback(_log_failure)
            self.relays[code] = (channel, task)
            self.live[code] = asyncio.Event()
            await layer.group_add(dispatch_group(code), channel)
            await self._confirm_live(code)
        elif self.is_hub() and code in self.live:
            # Another viewer's join may still be confirming the relay: wait for it too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.live[code].wait(), timeout=RELAY_CONFIRM_S)

    async def _confirm_live(self, code: str) -> None:
        """Returns once the city's relay receives a probe sent to the group, so a viewer whose socket has opened
        misses nothing published after that; a probe is re-sent every tenth of a second, for at most
        ``RELAY_CONFIRM_S`` (then the page's re-sync covers the gap, and it is logged)."""
        layer = get_channel_layer()
        assert layer is not None
        probe = uuid.uuid4().hex
        heard = self._probes[probe] = self.live[code]
        try:
            for _ in range(int(RELAY_CONFIRM_S * 10)):
                await layer.group_send(dispatch_group(code), {"type": "relay.probe", "probe": probe})
                try:
                    await asyncio.wait_for(heard.wait(), timeout=0.1)
                    return
                except TimeoutError:
                    continue
            logger.warning("relay of %s not confirmed within %s s", code, RELAY_CONFIRM_S)
        finally:
            self._probes.pop(probe, None)

    async def leave(self, city_code: str, viewer: Viewer) -> None:
        code = city_code.upper()
        members = self.viewers.get(code, set())
        members.discard(viewer)
        if not members:
            self.viewers.pop(code, None)
            relay = self.relays.pop(code, None)
            self.live.pop(code, None)
            if relay is not None:
                channel, task = relay
                task.cancel()
                layer = get_channel_layer()
                assert layer is not None
                await layer.group_discard(dispatch_group(code), channel)
        if not self.viewers and self.task is not None:
            # Nothing pending is lost: a point left in Redis goes out with the next flush of any process.
            self.task.cancel()
            self.task = None

    async def relay(self, city_code: str, channel: str) -> None:
        """Every message of the city's dispatch group, as one frame, to each of this process's viewers of it."""
        layer = get_channel_layer()
        assert layer is not None
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis restarting, or the classic layer's blocking read outliving redis-py's socket timeout: the
                # relay must outlive both, or this process's dashboards go silent.
                logger.warning("relay of %s: receive failed, retrying", city_code, exc_info=True)
                await asyncio.sleep(RELAY_RETRY_S)
                continue
            if message.get("type") == "relay.probe":  # a relay's own (this process's or another's) readiness probe
                heard = self._probes.get(message.get("probe", ""))
                if heard is not None:
                    heard.set()
                continue
            try:
                text = frame_text(message)
            except (KeyError, TypeError):
                logger.warning("a message of %s without an event: %r", city_code, message)
                continue
            for viewer in list(self.viewers.get(city_code, ())):
                viewer.push(text)

    async def run(self) -> None:
        try:
            while self.viewers:
                await asyncio.sleep(settings.DISPATCH_FLUSH_MS / TICKS_PER_FLUSH / 1000)
                for city_code in list(self.viewers):
                    try:
                        await self.flush(city_code)
                    except Exception:  # Redis or the layer down: try again next tick, keep the task alive
                        logger.warning("dashboard flush of %s failed", city_code, exc_info=True)
        finally:
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None

    async def flush(self, city_code: str) -> int:
        """Takes the city's flush turn if it is free; publishes its pending positions (and KPIs when due).

        Returns how many riders were published (0 when it was not this process's turn or nothing moved).
        """
        redis = self.redis
        answer = await self._script(
            keys=[flush_lock_key(city_code), pending_key(city_code), stats_lock_key(city_code)],
            args=[settings.DISPATCH_FLUSH_MS, settings.DISPATCH_STATS_S * 1000],
            client=redis,
        )
        if answer is None:
            return 0
        stats_due, pending = answer[0], answer[1:]
        riders = [json.loads(entry) for entry in pending[1::2]]
        if riders:
            await publish_async(dispatch_group(city_code), "rider.moved", {"riders": riders}, frame_id=uuid.uuid4().hex)
        if stats_due:  # a task of its own: a slow KPI query must not hold back the next flushes
            task = asyncio.get_running_loop().create_task(self.stats_publish(city_code))
            self._stats.add(task)
            task.add_done_callback(self._stats.discard)
        return len(riders)

    async def stats_publish(self, city_code: str) -> None:
        from dispatch import selectors  # the page's module: imports models

        try:
            kpis = await database_sync_to_async(selectors.kpis)(city_code)
            payload = json.loads(json.dumps(kpis, default=str))
            await self.redis.set(stats_key(city_code), json.dumps(payload), ex=3 * settings.DISPATCH_STATS_S)
            await publish_async(dispatch_group(city_code), "stats", payload)
        except Exception:
            logger.warning("KPIs of %s not published", city_code, exc_info=True)

    async def stats_latest(self, city_code: str) -> dict[str, Any] | None:
        """The city's KPIs as last published (for a viewer who just connected), or None."""
        text = await self.redis.get(stats_key(city_code))
        return None if text is None else json.loads(text)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped", task.get_name(), exc_info=task.exception())


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = weakref.WeakKeyDictionary()


def flusher() -> Flusher:
    """The running event loop's flusher (one per process under an ASGI server; one per test's loop)."""
    loop = asyncio.get_running_loop()
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = Flusher()
    return found
