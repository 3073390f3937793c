"""The staff roles, in code: auth groups and the model permissions each one carries.

``sync_roles`` runs after every ``migrate``: it creates a missing group and gives it the permissions code lists
and it lacks. It never takes a permission away, so what ops grant on top in admin (Groups) stays. Superusers
hold every permission; everyone else works through a role:

- ops: onboarding and running riders (profiles, KYC review and files, suspension, support tickets), orders,
  vehicles; reads the wallet; records COD deposits.
- dispatcher: orders and their history, riders (not their KYC documents: no view permission, so neither the
  rider page's KYC inline nor the file view opens for them), SOS alerts, duty logs.
- finance (``settings.FINANCE_GROUP``): the wallet, and alone among the roles approves and rejects withdrawals
  (``wallet.selectors.user_is_finance``); reads riders and orders.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

OPS = "ops"
DISPATCHER = "dispatcher"

_VIEW, _CHANGE, _ADD = ("view",), ("view", "change"), ("view", "change", "add")


def roles() -> dict[str, dict[str, tuple[str, ...]]]:
    """Group name → {"app_label.model": actions}, and custom permissions as {"app_label.codename": ()}."""
    return {
        OPS: {
            "riders.rider": _CHANGE,
            "riders.kycdocument": _CHANGE,
            "riders.dutylog": _VIEW,
            "riders.rating": _VIEW,
            "riders.supportticket": _CHANGE,
            "riders.emergencyalert": _CHANGE,
            "orders.order": _CHANGE,
            "orders.orderevent": _VIEW,
            "orders.orderoffer": _VIEW,
            "fleet.city": _VIEW,
            "fleet.vehicle": _ADD,
            "wallet.balance": _VIEW,
            "wallet.ledgerentry": _VIEW,
            "wallet.withdrawalrequest": _VIEW,
            "wallet.record_cod_deposit": (),
            "auditlog.logentry": _VIEW,
        },
        DISPATCHER: {
            "orders.order": _CHANGE,
            "orders.orderevent": _VIEW,
            "orders.orderoffer": _VIEW,
            "riders.rider": _VIEW,
            "riders.dutylog": _VIEW,
            "riders.emergencyalert": _CHANGE,
            "fleet.city": _VIEW,
            "fleet.vehicle": _VIEW,
        },
        settings.FINANCE_GROUP: {
            "wallet.balance": _VIEW,
            "wallet.ledgerentry": _VIEW,
            "wallet.withdrawalrequest": _CHANGE,
            "wallet.reconciliationrun": _VIEW,
            "wallet.record_cod_deposit": (),
            "riders.rider": _VIEW,
            "orders.order": _VIEW,
            "auditlog.logentry": _VIEW,
        },
    }


def codenames(grants: dict[str, tuple[str, ...]]) -> set[tuple[str, str]]:
    """``(app_label, codename)`` of every permission a role's grants name."""
    wanted = set()
    for target, actions in grants.items():
        app_label, name = target.split(".")
        if not actions:
            wanted.add((app_label, name))  # a custom permission, by its codename
        wanted |= {(app_label, f"{action}_{name}") for action in actions}
    return wanted


def sync_roles(sender: Any = None, **kwargs: Any) -> int:
    """Creates the roles' groups and adds the permissions they lack; returns how many grants it added.

    A permission code names that does not exist (a model renamed) raises: a role silently missing a grant
    would surface as a refused page in production instead of a failed deploy.
    """
    from django.contrib.auth.models import Group, Permission

    added = 0
    with transaction.atomic():
        for name, grants in roles().items():
            group, _ = Group.objects.get_or_create(name=name)
            wanted = codenames(grants)
            found = {
                (p.content_type.app_label, p.codename): p
                for p in Permission.objects.select_related("content_type").filter(
                    codename__in={codename for _, codename in wanted}
                )
            }
            missing = wanted - found.keys()
            if missing:
                raise LookupError(f"role {name!r} names permissions that do not exist: {sorted(missing)}")
            have = set(group.permissions.values_list("pk", flat=True))
            new = [found[key] for key in wanted if found[key].pk not in have]
            group.permissions.add(*new)
            added += len(new)
    return added
