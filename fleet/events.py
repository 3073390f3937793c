"""Events the fleet app publishes; called after commit.

A rider's move does not go to the city's dispatchers from here: ingest only keeps it as the rider's newest
pending point (``fleet.live.position_advance``) and ``dispatch.coalesce`` sends each city's pending points as
one ``rider.moved`` every ``DISPATCH_FLUSH_MS``. What goes out at once is the move of a rider whose order's
tracking page is open: one rider's batches come seconds apart, so there is nothing to coalesce there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.realtime import order_track_group, publish_many


def rider_moved_entry(
    *,
    rider_id: int,
    lat: float,
    lon: float,
    recorded_at: str,
    speed_kmh: float | None,
    heading_deg: int | None,
    battery_pct: int | None,
) -> dict[str, Any]:
    """One rider's position in a ``rider.moved`` event (whose payload is ``{"riders": [entry, ...]}``)."""
    return {
        "rider_id": rider_id,
        "lat": lat,
        "lon": lon,
        "recorded_at": recorded_at,
        "speed_kmh": speed_kmh,
        "heading_deg": heading_deg,
        "battery_pct": battery_pct,
    }


def rider_moved_tracked(*, order_ids: Iterable[int], entry: dict[str, Any]) -> None:
    """The rider's new position to the open tracking pages of those orders (the pages' consumers forward it
    only while the order is active and still the rider's)."""
    payload = {"riders": [entry]}
    publish_many([(order_track_group(order_id), "rider.moved", payload) for order_id in order_ids])
