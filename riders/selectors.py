"""Rider reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from riders.models import AlertStatus, DutyLog, DutyStatus, EmergencyAlert, KycDocument, Rider


@dataclass(frozen=True)
class HoursOfService:
    minutes_today: int
    minutes_7d: int
    daily_limit_minutes: int
    weekly_limit_minutes: int

    @property
    def minutes_left(self) -> int:
        return max(
            0,
            min(self.daily_limit_minutes - self.minutes_today, self.weekly_limit_minutes - self.minutes_7d),
        )


def _windows(now: datetime) -> tuple[datetime, datetime]:
    """Start of today in the portal's time zone, and the start of the rolling 7-day window."""
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return day_start, now - timedelta(days=7)


def _on_duty_within(start: datetime, now: datetime) -> Sum:
    """Sum over duty logs of the time each overlaps [start, now] (an open log runs until now)."""
    ended = Least(Coalesce(F("ended_at"), Value(now)), Value(now))
    overlap = ExpressionWrapper(ended - Greatest(F("started_at"), Value(start)), output_field=DurationField())
    return Sum(Greatest(overlap, Value(timedelta(0))), default=timedelta(0))


def _duty_minutes(rider_ids: Any, now: datetime) -> QuerySet[Any, Any]:
    day_start, week_start = _windows(now)
    return (
        DutyLog.objects.filter(rider_id__in=rider_ids)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=week_start), started_at__lt=now)
        .values("rider_id")
        .annotate(today=_on_duty_within(day_start, now), week=_on_duty_within(week_start, now))
    )


def rider_hos(*, rider_id: int, now: datetime | None = None) -> HoursOfService:
    """Minutes on duty today (local day) and over the last 7 days, against the configured limits."""
    now = now or timezone.now()
    row = next(iter(_duty_minutes([rider_id], now)), None)
    today = row["today"] if row else timedelta(0)
    week = row["week"] if row else timedelta(0)
    return HoursOfService(
        minutes_today=int(today.total_seconds() // 60),
        minutes_7d=int(week.total_seconds() // 60),
        daily_limit_minutes=settings.HOS_DAILY_LIMIT_MINUTES,
        weekly_limit_minutes=settings.HOS_WEEKLY_LIMIT_MINUTES,
    )


def riders_hos(*, rider_ids: Iterable[int], now: datetime | None = None) -> dict[int, HoursOfService]:
    """``rider_hos`` of many riders in one query, by id (every given rider is in the answer, 0 minutes when
    the rider has no duty log in the window): the dispatcher dashboard's on-duty list."""
    now = now or timezone.now()
    ids = set(rider_ids)
    rows = {row["rider_id"]: row for row in _duty_minutes(ids, now)}
    answer = {}
    for rider_id in ids:
        row = rows.get(rider_id)
        today = row["today"] if row else timedelta(0)
        week = row["week"] if row else timedelta(0)
        answer[rider_id] = HoursOfService(
            minutes_today=int(today.total_seconds() // 60),
            minutes_7d=int(week.total_seconds() // 60),
            daily_limit_minutes=settings.HOS_DAILY_LIMIT_MINUTES,
            weekly_limit_minutes=settings.HOS_WEEKLY_LIMIT_MINUTES,
        )
    return answer


def riders_over_hos_limit(*, now: datetime) -> list[int]:
    """Ids of on-duty riders whose time today or in the last 7 days reached its limit: one query."""
    on_duty = Rider.objects.filter(duty_status=DutyStatus.ON).values("pk")
    daily = timedelta(minutes=settings.HOS_DAILY_LIMIT_MINUTES)
    weekly = timedelta(minutes=settings.HOS_WEEKLY_LIMIT_MINUTES)
    rows = _duty_minutes(on_duty, now).filter(Q(today__gte=daily) | Q(week__gte=weekly))
    return [row["rider_id"] for row in rows]


def rider_profile(*, rider_id: int) -> Rider:
    """The rider with city and vehicle joined and ``average_rating`` / ``rating_count`` annotated."""
    return (
        Rider.objects.select_related("city", "vehicle")
        .annotate(average_rating=Avg("ratings__stars"), rating_count=Count("ratings"))
        .get(pk=rider_id)
    )


def kyc_document_list(*, rider_id: int) -> QuerySet[KycDocument]:
    return KycDocument.objects.filter(rider_id=rider_id)


def riders_on_duty_names(*, rider_ids: Iterable[int], city_code: str) -> dict[int, str]:
    """Names of those riders who are on duty in the city, by id (dispatch's nearby list): one query."""
    rows = Rider.objects.filter(
        pk__in=set(rider_ids), duty_status=DutyStatus.ON, city__code=city_code.upper()
    ).values_list("pk", "name")
    return dict(rows)


def rider_gps_interval_s(*, rider_id: int) -> int:
    """How often the rider's app should report its position: ``SOS_GPS_INTERVAL_S`` while one of the rider's
    SOS alerts is open, ``GPS_INTERVAL_S`` otherwise."""
    is_in_sos = EmergencyAlert.objects.filter(rider_id=rider_id, status=AlertStatus.OPEN).exists()
    return settings.SOS_GPS_INTERVAL_S if is_in_sos else settings.GPS_INTERVAL_S
