"""Geometry on a spherical Earth: great-circle distance, bearing, destination. Used by the simulator, the
distance job's constant (``fleet.distance``) and dispatch's proof-of-delivery check."""

from __future__ import annotations

import math
from typing import NamedTuple

EARTH_RADIUS_M = 6_371_008.8


class LatLon(NamedTuple):
    lat: float
    lon: float


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance between two points, in metres."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    d_phi = phi2 - phi1
    d_lambda = math.radians(b.lon - a.lon)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Initial bearing from ``a`` to ``b``: 0 is north, 90 east; ``[0, 360)``."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    d_lambda = math.radians(b.lon - a.lon)
    y = math.sin(d_lambda) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(d_lambda)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination(origin: LatLon, bearing: float, distance_m: float) -> LatLon:
    """The point ``distance_m`` from ``origin`` along the initial ``bearing`` (degrees)."""
    delta = distance_m / EARTH_RADIUS_M
    theta = math.radians(bearing)
    phi1, lambda1 = math.radians(origin.lat), math.radians(origin.lon)
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * sin_phi2
    )
    lon = (math.degrees(lambda2) + 540.0) % 360.0 - 180.0
    return LatLon(math.degrees(phi2), lon)
