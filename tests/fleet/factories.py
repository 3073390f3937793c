import factory

from fleet.models import City, Vehicle, VehicleKind


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
