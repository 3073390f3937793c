from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from config.schedule import sync_schedule

        # Once per migrate (sender is this app): entries added to config/schedule.py since migration 0006.
        post_migrate.connect(sync_schedule, sender=self, dispatch_uid="fleetops.sync_schedule")
