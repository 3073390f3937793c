"""Celery tasks of the riders app: thin, named, each calls one service. Retries on transient errors and
``acks_late`` come from ``config.tasks.FleetTask``."""

from __future__ import annotations

from celery import shared_task

from riders import services


@shared_task(name="riders.hos_enforce")
def hos_enforce_task() -> int:
    """Idempotent: a rider already moved is not moved again."""
    return services.riders_hos_enforce()


@shared_task(name="riders.stale_auto_off")
def stale_auto_off_task() -> int:
    """Idempotent: a rider already moved is no longer on duty, so is not moved again."""
    return services.riders_stale_auto_off()


@shared_task(name="riders.sos_escalate", ignore_result=True)
def sos_escalate_task(alert_id: int) -> bool:
    """Queued at raise with a countdown of ``SOS_ESCALATE_AFTER_S``. Idempotent: an alert acknowledged or
    already escalated is left alone."""
    return services.emergency_alert_escalate(alert_id=alert_id)


@shared_task(name="riders.sos_escalate_due")
def sos_escalate_due_task() -> int:
    """Every minute, the safety net under ``riders.sos_escalate`` (a lost or delayed task). Idempotent."""
    return services.emergency_alerts_escalate_due()
