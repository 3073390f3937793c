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
import json
import logging
import uuid
import weakref
from collections import Counter
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache

from config.realtime import dispatch_group, publish_async
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


def flush_lock_key(city_code: str) -> str:
    return cache.make_key(f"live:flush:{city_code.upper()}")


def stats_lock_key(city_code: str) -> str:
    return cache.make_key(f"live:stats-turn:{city_code.upper()}")


def stats_key(city_code: str) -> str:
    return cache.make_key(f"live:stats:{city_code.upper()}")


class Flusher:
    """The flusher of one event loop: runs while the loop has dashboard viewers, for their cities only."""

    def __init__(self) -> None:
        self.viewers: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None
        self._redis: aioredis.Redis | None = None
        self._script: Any = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.from_url(str(settings.CACHES["default"]["LOCATION"]))
            self._script = self._redis.register_script(_FLUSH_TURN)
        return self._redis

    def join(self, city_code: str) -> None:
        self.viewers[city_code.upper()] += 1
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(), name="dispatch-flusher")

    def leave(self, city_code: str) -> None:
        code = city_code.upper()
        self.viewers[code] -= 1
        if self.viewers[code] <= 0:
            del self.viewers[code]
        if not self.viewers and self.task is not None:
            # Nothing pending is lost: a point left in Redis goes out with the next flush of any process.
            self.task.cancel()
            self.task = None

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
        if stats_due:
            await self.stats_publish(city_code)
        return len(riders)

    async def stats_publish(self, city_code: str) -> None:
        from dispatch import selectors  # the page's module: imports models

        kpis = await database_sync_to_async(selectors.kpis)(city_code)
        payload = json.loads(json.dumps(kpis, default=str))
        await self.redis.set(stats_key(city_code), json.dumps(payload), ex=3 * settings.DISPATCH_STATS_S)
        await publish_async(dispatch_group(city_code), "stats", payload)

    async def stats_latest(self, city_code: str) -> dict[str, Any] | None:
        """The city's KPIs as last published (for a viewer who just connected), or None."""
        text = await self.redis.get(stats_key(city_code))
        return None if text is None else json.loads(text)


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = weakref.WeakKeyDictionary()


def flusher() -> Flusher:
    """The running event loop's flusher (one per process under an ASGI server; one per test's loop)."""
    loop = asyncio.get_running_loop()
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = Flusher()
    return found
