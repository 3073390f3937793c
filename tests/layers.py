"""Listening to channel-layer groups from a synchronous test, with whichever layer the settings name.

The pub/sub layer keeps one layer per event loop and drops a channel whose ``receive`` was cancelled (a timeout);
``async_to_sync`` runs each call in a loop of its own. So a listener here owns one loop on a thread of its own,
and each channel has a pump that receives forever into a queue the test reads with timeouts: nothing is cancelled
while the test runs, and the test's services run and commit on the main thread with its database connection.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers


class GroupListener:
    def __init__(self, groups: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="group-listener", daemon=True)
        self.thread.start()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {group: queue.Queue() for group in groups}
        self.channels: dict[str, str] = {}
        self.pumps: list[asyncio.Task[None]] = []
        self._run(self._start())

    def _run(self, coroutine: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> None:
        for group, inbox in self.queues.items():
            channel = await self.layer.new_channel()
            await self.layer.group_add(group, channel)
            self.channels[group] = channel
            self.pumps.append(asyncio.get_running_loop().create_task(self._pump(channel, inbox)))

    async def _pump(self, channel: str, inbox: queue.Queue[dict[str, Any]]) -> None:
        while True:
            inbox.put(await self.layer.receive(channel))

    def next(self, group: str, *, timeout: float = 5) -> dict[str, Any]:
        """The group's next message; raises ``queue.Empty`` when none came within ``timeout``."""
        return self.queues[group].get(timeout=timeout)

    def messages(self, group: str, *, wait_s: float = 0.5) -> list[dict[str, Any]]:
        """Every message the group got until nothing more came for ``wait_s``."""
        received = []
        while True:
            try:
                received.append(self.queues[group].get(timeout=wait_s))
            except queue.Empty:
                return received

    def close(self) -> None:
        async def stop() -> None:
            for pump in self.pumps:
                pump.cancel()
            await asyncio.gather(*self.pumps, return_exceptions=True)
            for group, channel in self.channels.items():
                await self.layer.group_discard(group, channel)
            await self.layer.flush()

        try:
            self._run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
