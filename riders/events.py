"""Events the riders app publishes; called after commit."""

from __future__ import annotations

from config.realtime import dispatch_group, publish
from riders.models import EmergencyAlert


def emergency_alert_raised(alert_id: int) -> None:
    """Tells the dispatchers of the alert's city at once (the dashboard shows it as an open incident)."""
    alert = EmergencyAlert.objects.select_related("rider", "city").get(pk=alert_id)
    publish(
        dispatch_group(alert.city.code),
        "sos.raised",
        {
            "alert_id": alert.pk,
            "rider_id": alert.rider_id,
            "rider_name": alert.rider.name,
            "rider_mobile": alert.rider.mobile,
            "lat": alert.lat,
            "lon": alert.lon,
            "message": alert.message,
            "raised_at": alert.raised_at.isoformat(),
        },
    )
