"""Accounts for the PostgreSQL restart test (tests/test_faults_postgres.py), made in the portal's own database.

Run by that test as ``python -m tests.fault_postgres_seed <riders>`` with the portal's environment (the private
cluster, the private Redis), after ``migrate``: a city, a partner, on-duty riders with some money in their
wallets, a staff user signed in, and one order to track. Prints what the test's clients need, as JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta


def main(rider_count: int) -> dict[str, object]:
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from orders.services import OrderIntake, Place, order_intake
    from riders.models import DutyStatus, KycStatus
    from tests.fleet.factories import CityFactory
    from tests.orders.factories import PartnerFactory
    from tests.riders.factories import DutyLogFactory, RiderFactory, UserFactory
    from tests.wallet.factories import earn

    now = timezone.now()
    city = CityFactory(code="FLT")
    partner = PartnerFactory()
    riders = []
    for _ in range(rider_count):
        rider = RiderFactory(city=city, kyc_status=KycStatus.APPROVED, duty_status=DutyStatus.ON, duty_changed_at=now)
        DutyLogFactory(rider=rider, started_at=now - timedelta(minutes=5))
        earn(rider.pk, 10_000_00, key=f"fault-seed:{rider.pk}")  # what the withdrawals draw on
        riders.append({"id": rider.pk, "token": Token.objects.create(user=rider.user).key})
    staff = UserFactory(username="fault-staff", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(staff)  # the session lives in Redis; the portal reads it with the same settings
    place = Place(lat=12.9716, lon=77.5946, address="MG Road")
    tracked = order_intake(
        intake=OrderIntake("FAULT-TRACKED", city.code, place, place, 45_00, 0, {}), actor=partner
    ).order
    return {
        "city": city.code,
        "partner_token": Token.objects.create(user=partner).key,
        "riders": riders,
        "staff_session": browser.cookies[settings.SESSION_COOKIE_NAME].value,
        "tracking_token": tracked.tracking_token,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
