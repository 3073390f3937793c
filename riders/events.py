"""Events the riders app publishes; called after commit.

An SOS reaches the dispatchers of the rider's city at once (``sos.raised``), and all cities' dispatchers when
it escalates; while the rider has an open alert the rider's app is told to send GPS every
``SOS_GPS_INTERVAL_S`` (``gps.interval`` on ``ws/driver/``), and back to ``GPS_INTERVAL_S`` once it is taken.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from config.realtime import dispatch_group, publish_many, rider_group
from fleet.models import City
from riders import selectors
from riders.models import EmergencyAlert


def alert_payload(alert: EmergencyAlert, *, escalated: bool) -> dict[str, Any]:
    """What the dashboard is told of an SOS (``alert`` loaded with its rider)."""
    return {
        "alert_id": alert.pk,
        "rider_id": alert.rider_id,
        "rider_name": alert.rider.name,
        "rider_mobile": alert.rider.mobile,
        "lat": alert.lat,
        "lon": alert.lon,
        "message": alert.message,
        "raised_at": alert.raised_at.isoformat(),
        "escalated": escalated,
    }


def gps_interval_payload(seconds: int) -> dict[str, Any]:
    return {"seconds": seconds}


def emergency_alert_raised(*, city_code: str, payload: dict[str, Any]) -> None:
    """Tells the dispatchers of the alert's city at once (the dashboard shows it as an open incident), and the
    rider's app to report its position every ``SOS_GPS_INTERVAL_S``. ``payload`` is the alert's
    ``alert_payload``, made by the service from the row it wrote: nothing is read again on the way out."""
    publish_many(
        [
            (dispatch_group(city_code), "sos.raised", payload),
            (rider_group(payload["rider_id"]), "gps.interval", gps_interval_payload(settings.SOS_GPS_INTERVAL_S)),
        ]
    )


def emergency_alert_escalated(alert_id: int) -> None:
    """Re-raises an unacknowledged SOS to the dispatchers of every city, marked ``escalated``."""
    alert = EmergencyAlert.objects.select_related("rider").get(pk=alert_id)
    payload = alert_payload(alert, escalated=True)
    codes = City.objects.order_by("code").values_list("code", flat=True)
    publish_many([(dispatch_group(code), "sos.raised", payload) for code in codes])


def emergency_alert_acknowledged(alert_id: int) -> None:
    """Tells the city's dispatchers who took the SOS, and the rider's app its GPS interval now (normal again
    unless another alert of the rider is still open)."""
    alert = EmergencyAlert.objects.select_related("city", "acknowledged_by").get(pk=alert_id)
    assert alert.acknowledged_at is not None
    payload = {
        "alert_id": alert.pk,
        "rider_id": alert.rider_id,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "acknowledged_at": alert.acknowledged_at.isoformat(),
    }
    seconds = selectors.rider_gps_interval_s(rider_id=alert.rider_id)
    publish_many(
        [
            (dispatch_group(alert.city.code), "sos.acknowledged", payload),
            (rider_group(alert.rider_id), "gps.interval", gps_interval_payload(seconds)),
        ]
    )
