"""Events the fleet app publishes; called after commit."""

from __future__ import annotations

from config.realtime import dispatch_group, publish


def rider_moved(
    *,
    rider_id: int,
    city_code: str,
    lat: float,
    lon: float,
    recorded_at: str,
    speed_kmh: float | None,
    heading_deg: int | None,
    battery_pct: int | None,
) -> None:
    """A rider's live position moved forward: one event per GPS batch (its newest point), never one per point.

    The dashboard coalesces these per city before they reach browsers.
    """
    publish(
        dispatch_group(city_code),
        "rider.moved",
        {
            "rider_id": rider_id,
            "lat": lat,
            "lon": lon,
            "recorded_at": recorded_at,
            "speed_kmh": speed_kmh,
            "heading_deg": heading_deg,
            "battery_pct": battery_pct,
        },
    )
