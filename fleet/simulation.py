"""How simulated riders move: pure, typed path math shared by ``simulate`` and ``seed_demo``.

Nothing here touches the database or the clock. Randomness comes in as a ``random.Random`` the
caller seeds, so a given seed replays the same paths. Distances are metres on a spherical Earth
(good to ~0.5 % at city scale, which is all a demo needs); bearings are degrees clockwise from
true north in ``[0, 360)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fleet.geo import EARTH_RADIUS_M, LatLon, bearing_deg, destination, haversine_m

#: Cruising speeds (km/h) a rider of each vehicle kind picks from; city traffic, not highways.
CRUISE_KMH: dict[str, tuple[float, float]] = {
    "BIKE": (15.0, 35.0),
    "EV": (15.0, 30.0),
    "TRUCK": (10.0, 28.0),
}
DEFAULT_CRUISE_KMH = (15.0, 35.0)

#: Idle riders roam towards random points this far from the city centre.
ROAM_RADIUS_M = 5_000.0


def step_toward(position: LatLon, target: LatLon, max_step_m: float) -> LatLon:
    """Moves at most ``max_step_m`` from ``position`` towards ``target``; never past it.

    Within reach, the answer is ``target`` itself (exactly), so callers can test arrival by equality.
    """
    remaining = haversine_m(position, target)
    if remaining <= max(max_step_m, 0.0):
        return target
    if max_step_m <= 0:
        return position
    return destination(position, bearing_deg(position, target), max_step_m)


def random_point_within(center: LatLon, radius_m: float, rng: random.Random) -> LatLon:
    """A point uniformly distributed over the disc of ``radius_m`` around ``center``."""
    distance = radius_m * math.sqrt(rng.random())
    return destination(center, rng.uniform(0.0, 360.0), distance)


def jitter(position: LatLon, sigma_m: float, rng: random.Random) -> LatLon:
    """``position`` displaced by Gaussian GPS noise of ``sigma_m`` metres in each axis."""
    north, east = rng.gauss(0.0, sigma_m), rng.gauss(0.0, sigma_m)
    lat = position.lat + math.degrees(north / EARTH_RADIUS_M)
    lon = position.lon + math.degrees(east / (EARTH_RADIUS_M * max(math.cos(math.radians(position.lat)), 1e-6)))
    return LatLon(max(-90.0, min(90.0, lat)), (lon + 540.0) % 360.0 - 180.0)


@dataclass(frozen=True)
class Waypoint:
    """Somewhere a rider heads for, and how long it stands still on arrival (a pickup, a drop)."""

    position: LatLon
    dwell_s: float = 0.0


@dataclass(frozen=True)
class Mover:
    """One simulated rider: where it truly is (fixes add GPS noise on top) and where it is going."""

    position: LatLon
    home: LatLon
    cruise_kmh: float
    heading_deg: float = 0.0
    speed_kmh: float = 0.0
    battery_pct: float = 100.0
    waypoints: tuple[Waypoint, ...] = ()
    dwell_s: float = 0.0
    roam_radius_m: float = ROAM_RADIUS_M


@dataclass(frozen=True)
class Fix:
    """What the phone reports for one tick."""

    lat: float
    lon: float
    speed_kmh: float
    heading_deg: int
    accuracy_m: float
    battery_pct: int


def cruise_kmh_for(vehicle_kind: str | None, rng: random.Random) -> float:
    low, high = CRUISE_KMH.get(vehicle_kind or "", DEFAULT_CRUISE_KMH)
    return rng.uniform(low, high)


def order_waypoints(stops: Sequence[tuple[str, LatLon, LatLon]], rng: random.Random) -> tuple[Waypoint, ...]:
    """Waypoints for a rider's active orders, given as ``(status, pickup, drop)`` in assignment order.

    An order not yet picked up sends the rider to its pickup, then its drop; a picked-up one
    straight to the drop. Riders stand still a little at each stop (handing over, the OTP).
    """
    pickups: list[Waypoint] = []
    drops: list[Waypoint] = []
    for status, pickup, drop in stops:
        if status != "PICKED_UP":
            pickups.append(Waypoint(pickup, dwell_s=rng.uniform(60.0, 180.0)))
        drops.append(Waypoint(drop, dwell_s=rng.uniform(45.0, 120.0)))
    return (*pickups, *drops)


def mover_advance(mover: Mover, *, dt_s: float, rng: random.Random) -> tuple[Mover, Fix]:
    """Moves ``mover`` on by ``dt_s`` seconds; returns its new state and the fix it reports.

    Speed wanders around the rider's cruising speed with the odd stop at a signal, heading is
    the direction actually travelled (kept while standing), battery drains about 1 % per 4 to 6
    minutes. With no waypoint left, the rider roams to a random point near the city centre.
    """
    battery = max(1.0, mover.battery_pct - dt_s * rng.uniform(0.0025, 0.0045))
    position, heading, waypoints = mover.position, mover.heading_deg, mover.waypoints
    dwell = max(0.0, mover.dwell_s - dt_s)
    moved_m = 0.0
    speed = 0.0
    if mover.dwell_s <= 0.0:
        if not waypoints:
            roam = random_point_within(mover.home, mover.roam_radius_m, rng)
            waypoints = (Waypoint(roam, dwell_s=rng.uniform(0.0, 30.0)),)
        if rng.random() < min(0.5, 0.01 * dt_s):
            # A red light or a jam: stand a while, no movement this tick.
            dwell = rng.uniform(10.0, 45.0)
        else:
            toward_cruise = mover.speed_kmh + 0.5 * (mover.cruise_kmh - mover.speed_kmh)
            speed = min(max(toward_cruise + rng.gauss(0.0, 2.5), 3.0), mover.cruise_kmh * 1.3)
            target = waypoints[0]
            new_position = step_toward(position, target.position, speed / 3.6 * dt_s)
            moved_m = haversine_m(position, new_position)
            if moved_m > 0.5:
                heading = bearing_deg(position, new_position)
            position = new_position
            if position == target.position:
                waypoints = waypoints[1:]
                dwell = target.dwell_s
    reported_speed = moved_m / dt_s * 3.6 if dt_s > 0 else 0.0
    accuracy = rng.uniform(3.0, 12.0) if rng.random() > 0.05 else rng.uniform(15.0, 35.0)
    seen = jitter(position, accuracy / 2.0, rng)
    new = replace(
        mover,
        position=position,
        heading_deg=heading,
        speed_kmh=speed,
        battery_pct=battery,
        waypoints=waypoints,
        dwell_s=dwell,
    )
    fix = Fix(
        lat=round(seen.lat, 7),
        lon=round(seen.lon, 7),
        speed_kmh=round(reported_speed, 1),
        heading_deg=round(heading) % 360,
        accuracy_m=round(accuracy, 1),
        battery_pct=int(battery),
    )
    return new, fix


def mover_trail(
    mover: Mover, *, start: datetime, interval_s: float, count: int, rng: random.Random
) -> tuple[Mover, list[tuple[datetime, Fix]]]:
    """``count`` fixes ``interval_s`` apart from ``start``: the recent track of a rider."""
    fixes: list[tuple[datetime, Fix]] = []
    for i in range(count):
        mover, fix = mover_advance(mover, dt_s=interval_s, rng=rng)
        fixes.append((start + timedelta(seconds=interval_s * i), fix))
    return mover, fixes
