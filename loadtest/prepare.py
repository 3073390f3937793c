"""Accounts for a load test, in the portal's own database: riders on duty with API tokens, partners with
tokens, staff with signed-in sessions; written to ``var/loadtest/accounts.json`` for the locustfile.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python loadtest/prepare.py [--riders 1000] [--partners 50]

Idempotent: a second run reuses the accounts (``loadtest-`` users) and only adds what is missing. Sessions are
created in the portal's session store (the cache), so the portal under test must use the same Redis and cache
prefix, and they are signed with its secret: ``SECRET_KEY``, else the one ``make serve`` keeps in ``var/secret_key``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "var" / "loadtest" / "accounts.json"
CITY = ("BLR", "Bengaluru", 12.9716, 77.5946)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--riders", type=int, default=1000)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--dispatchers", type=int, default=50)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Sessions are signed with the portal's SECRET_KEY: `make serve` keeps its own in var/secret_key.
    secret = REPO / "var" / "secret_key"
    if "SECRET_KEY" not in os.environ and secret.exists():
        os.environ["SECRET_KEY"] = secret.read_text().strip()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.cache import SessionStore
    from rest_framework.authtoken.models import Token

    from access.roles import DISPATCHER
    from fleet.models import City
    from riders.models import DutyLog, DutyStatus, KycStatus, Rider

    code, name, lat, lon = CITY
    city, _ = City.objects.get_or_create(code=code, defaults={"name": name, "center_lat": lat, "center_lon": lon})
    riders = []
    for i in range(args.riders):
        mobile = f"+9170{i:08d}"
        user, _ = User.objects.get_or_create(username=mobile, defaults={"first_name": f"Load rider {i}"})
        rider, _ = Rider.objects.get_or_create(
            mobile=mobile,
            defaults={"user": user, "name": f"Load rider {i}", "city": city, "kyc_status": KycStatus.APPROVED},
        )
        if rider.duty_status != DutyStatus.ON:
            Rider.objects.filter(pk=rider.pk).update(duty_status=DutyStatus.ON, duty_changed_at=datetime.now(UTC))
            DutyLog.objects.get_or_create(rider=rider, ended_at=None, defaults={"started_at": datetime.now(UTC)})
        token, _ = Token.objects.get_or_create(user=user)
        riders.append({"id": rider.pk, "token": token.key})
        if (i + 1) % 200 == 0:
            print(f"  riders: {i + 1:,}/{args.riders:,}", file=sys.stderr, flush=True)

    partner_group, _ = Group.objects.get_or_create(name=settings.PARTNER_GROUP)
    partners = []
    for i in range(args.partners):
        user, _ = User.objects.get_or_create(username=f"loadtest-partner-{i:03d}")
        user.groups.add(partner_group)
        partners.append({"token": Token.objects.get_or_create(user=user)[0].key})

    dispatcher_group, _ = Group.objects.get_or_create(name=DISPATCHER)  # the dashboard's role (access.roles)
    dispatchers = []
    for i in range(args.dispatchers):
        user, _ = User.objects.get_or_create(username=f"loadtest-dispatcher-{i:03d}", defaults={"is_staff": True})
        user.groups.add(dispatcher_group)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.set_expiry(12 * 60 * 60)
        session.save()
        dispatchers.append({"session": session.session_key})

    OUT.parent.mkdir(parents=True, exist_ok=True)
    accounts = {"city": code, "center": [lat, lon], "riders": riders, "partners": partners, "dispatchers": dispatchers}
    OUT.write_text(json.dumps(accounts))
    print(f"{len(riders):,} riders, {len(partners)} partners, {len(dispatchers)} dispatchers -> {OUT}")


if __name__ == "__main__":
    main()
