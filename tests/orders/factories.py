from datetime import timedelta

import factory
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from orders.models import OfferStatus, Order, OrderEvent, OrderOffer, OrderStatus
from tests.fleet.factories import CityFactory
from tests.riders.factories import RiderFactory, UserFactory


class PartnerFactory(UserFactory):
    """A partner account: a user in the ``PARTNER_GROUP`` group, not staff."""

    class Meta:
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"partner{n}")

    @factory.post_generation
    def partner_group(self, create, extracted, **kwargs):
        if create:
            group, _ = Group.objects.get_or_create(name=settings.PARTNER_GROUP)
            self.groups.add(group)


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


class AcceptedOrderFactory(AssignedOrderFactory):
    status = OrderStatus.ACCEPTED
    assigned_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=30))
    accepted_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=25))


class PickedUpOrderFactory(AcceptedOrderFactory):
    status = OrderStatus.PICKED_UP
    picked_up_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20))


class DeliveredOrderFactory(AssignedOrderFactory):
    status = OrderStatus.DELIVERED
    delivered_at = factory.LazyFunction(timezone.now)


class OrderEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderEvent

    order = factory.SubFactory(OrderFactory)
    to_status = OrderStatus.CREATED


class OrderOfferFactory(factory.django.DjangoModelFactory):
    """A pending offer of an assigned order to its rider, made a minute ago, expiring in a minute."""

    class Meta:
        model = OrderOffer

    order = factory.SubFactory(AssignedOrderFactory)
    rider = factory.SelfAttribute("order.rider")
    status = OfferStatus.PENDING
    offered_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    expires_at = factory.LazyAttribute(lambda offer: offer.offered_at + timedelta(minutes=2))
