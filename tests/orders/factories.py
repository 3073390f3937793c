import factory
from django.utils import timezone

from orders.models import Order, OrderEvent, OrderStatus
from tests.fleet.factories import CityFactory
from tests.riders.factories import RiderFactory


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_ref = factory.Sequence(lambda n: f"PARTNER-{n:06d}")
    city = factory.SubFactory(CityFactory)
    pickup_lat = 12.9716
    pickup_lon = 77.5946
    pickup_address = "MG Road, Bengaluru"
    drop_lat = 12.9352
    drop_lon = 77.6245
    drop_address = "Koramangala, Bengaluru"
    delivery_fee_paise = 4500
    cod_amount_paise = 0
    metadata = factory.LazyFunction(lambda: {"items": 1})


class AssignedOrderFactory(OrderFactory):
    status = OrderStatus.ASSIGNED
    rider = factory.SubFactory(RiderFactory, city=factory.SelfAttribute("..city"))
    assigned_at = factory.LazyFunction(timezone.now)


class DeliveredOrderFactory(AssignedOrderFactory):
    status = OrderStatus.DELIVERED
    delivered_at = factory.LazyFunction(timezone.now)


class OrderEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderEvent

    order = factory.SubFactory(OrderFactory)
    to_status = OrderStatus.CREATED
