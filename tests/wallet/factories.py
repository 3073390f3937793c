import factory

from tests.riders.factories import RiderFactory
from wallet.models import WithdrawalRequest


class WithdrawalRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WithdrawalRequest

    rider = factory.SubFactory(RiderFactory)
    amount_paise = 50_000
    idempotency_key = factory.Sequence(lambda n: f"withdrawal-{n}")
