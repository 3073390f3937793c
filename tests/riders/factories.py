import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from riders.models import (
    DutyLog,
    EmergencyAlert,
    KycDocument,
    KycDocumentType,
    Rating,
    Rider,
    SupportTicket,
    TicketCategory,
)
from tests.fleet.factories import CityFactory


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")


class RiderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rider

    mobile = factory.Sequence(lambda n: f"+9198{n:08d}")
    user = factory.SubFactory(UserFactory, username=factory.SelfAttribute("..mobile"))
    name = factory.Faker("name", locale="en_IN")
    city = factory.SubFactory(CityFactory)


class KycDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KycDocument

    rider = factory.SubFactory(RiderFactory)
    doc_type = KycDocumentType.PAN
    number = "ABCDE1234F"
    file = factory.LazyFunction(lambda: ContentFile(b"%PDF-1.4 test document", name="pan.pdf"))
    content_type = "application/pdf"
    size_bytes = 23


class DutyLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DutyLog

    rider = factory.SubFactory(RiderFactory)
    started_at = factory.LazyFunction(timezone.now)


class SupportTicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupportTicket

    rider = factory.SubFactory(RiderFactory)
    category = TicketCategory.PAYMENT
    subject = "Payout not received"
    body = "My withdrawal from last week has not reached my account."


class EmergencyAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmergencyAlert

    rider = factory.SubFactory(RiderFactory)
    city = factory.SelfAttribute("rider.city")
    lat = 12.97
    lon = 77.59


class RatingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rating

    order = factory.SubFactory("tests.orders.factories.DeliveredOrderFactory")
    rider = factory.SelfAttribute("order.rider")
    stars = 5
