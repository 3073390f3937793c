from datetime import date, timedelta

import factory
from django.utils import timezone

from fleet.models import City, RiderDayDistance, Vehicle, VehicleKind


class CityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = City
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"C{n:03d}")
    name = factory.Sequence(lambda n: f"City {n}")
    center_lat = 12.9716
    center_lon = 77.5946


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    kind = VehicleKind.BIKE
    registration = factory.Sequence(lambda n: f"KA01AB{n:04d}")
    city = factory.SubFactory(CityFactory)
    order_capacity = 2


class RiderDayDistanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiderDayDistance

    rider = factory.SubFactory("tests.riders.factories.RiderFactory")
    day = factory.Sequence(lambda n: date(2030, 1, 1) + timedelta(days=n))
    distance_m = factory.Sequence(lambda n: 1_000 + 137 * n)
    points = 240
    computed_at = factory.LazyFunction(timezone.now)
