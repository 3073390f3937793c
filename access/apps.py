from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccessConfig(AppConfig):
    """Who may do what in the admin: the staff roles (auth groups), the audit log, the throttled login; and the
    API token cache's revocation (``access.token_cache``)."""

    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from access import token_cache
        from access.roles import sync_roles

        token_cache.connect_signals()
        # After every migrate, once auth has created the permissions of every model (its own post_migrate
        # receiver runs first: auth comes before this app in INSTALLED_APPS).
        post_migrate.connect(sync_roles, sender=self, dispatch_uid="access.sync_roles")
