"""Row locks of the riders app, always taken in primary-key order so two lockers never deadlock."""

from __future__ import annotations

from collections.abc import Iterable

from riders.models import Rider


def lock_riders(rider_ids: Iterable[int]) -> list[Rider]:
    """``SELECT ... FOR UPDATE`` on the riders, in id order; returns them in that order."""
    return list(Rider.objects.select_for_update().filter(pk__in=set(rider_ids)).order_by("pk"))
