"""The order lock builds the same order (and city) the ORM would: every field converted, the city attached."""

import pytest
from django.db import transaction

from orders import locks
from orders.models import Order
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_the_locked_order_equals_the_orms_field_by_field():
    created = OrderFactory(metadata={"items": [{"sku": "A1", "qty": 2}], "note": "ring twice"})
    expected = Order.objects.select_related("city").get(pk=created.pk)

    with transaction.atomic():
        locked = locks.lock_order(created.pk)

    for field in Order._meta.concrete_fields:
        assert getattr(locked, field.attname) == getattr(expected, field.attname), field.name
    assert locked.metadata["items"][0]["qty"] == 2  # JSON decoded, not text
    assert locked._state.adding is False  # a saved instance, as the ORM's
    for field in type(expected.city)._meta.concrete_fields:
        assert getattr(locked.city, field.attname) == getattr(expected.city, field.attname), field.name


def test_no_such_order_is_not_found():
    from config.errors import NotFound

    with transaction.atomic(), pytest.raises(NotFound):
        locks.lock_order(10**12)
