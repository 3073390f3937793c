"""Row locks of the riders app, always taken in primary-key order so two lockers never deadlock."""

from __future__ import annotations

from collections.abc import Iterable

from riders.models import EmergencyAlert, Rider


def lock_riders(rider_ids: Iterable[int]) -> list[Rider]:
    """``SELECT ... FOR UPDATE`` on the riders, in id order; returns them in that order."""
    return list(Rider.objects.select_for_update().filter(pk__in=set(rider_ids)).order_by("pk"))


def lock_alert(alert_id: int) -> EmergencyAlert | None:
    """``SELECT ... FOR UPDATE`` on one SOS alert (with its rider and city); None when it does not exist."""
    return (
        EmergencyAlert.objects.select_for_update(of=("self",))
        .select_related("rider", "city")
        .filter(pk=alert_id)
        .first()
    )
