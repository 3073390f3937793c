import itertools

import factory
from django.conf import settings
from django.contrib.auth.models import Group

from orders.services import RiderStep, order_rider_step
from tests.orders.factories import PickedUpOrderFactory
from tests.riders.factories import RiderFactory, UserFactory
from wallet.models import EntryType, WithdrawalRequest
from wallet.services import ledger_entry_post

_keys = itertools.count()


class WithdrawalRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WithdrawalRequest

    rider = factory.SubFactory(RiderFactory)
    amount_paise = 50_000
    idempotency_key = factory.Sequence(lambda n: f"withdrawal-{n}")


class FinanceUserFactory(UserFactory):
    """Staff in the ``FINANCE_GROUP`` group: may approve and reject withdrawals."""

    class Meta:
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"finance{n}")
    is_staff = True

    @factory.post_generation
    def finance_group(self, create, extracted, **kwargs):
        if create:
            group, _ = Group.objects.get_or_create(name=settings.FINANCE_GROUP)
            self.groups.add(group)


def earn(rider_id: int, paise: int, key: str | None = None):
    """An incentive credit through the posting primitive (no order needed)."""
    return ledger_entry_post(
        rider_id=rider_id,
        entry_type=EntryType.INCENTIVE,
        amount_paise=paise,
        idempotency_key=key or f"incentive:test:{next(_keys)}",
    ).entry


def deliver(order, *, rider_id: int | None = None):
    """The rider reports a picked-up order DELIVERED at the drop with its OTP: the real path, signal included."""
    return order_rider_step(
        order_id=order.pk,
        rider_id=rider_id or order.rider_id,
        actor=order.rider.user,
        step=RiderStep(status="DELIVERED", otp=order.delivery_otp, lat=order.drop_lat, lon=order.drop_lon),
    )


def picked_up(rider, **fields):
    return PickedUpOrderFactory(rider=rider, city=rider.city, **fields)
