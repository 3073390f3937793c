"""The database refuses orders that break the state machine's invariants."""

import pytest
from django.db import IntegrityError, connection, transaction

from orders.models import Order, OrderStatus
from tests.orders.factories import OrderFactory
from tests.riders.factories import RiderFactory

pytestmark = pytest.mark.django_db


def _refused(**kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(**kwargs)


def test_external_ref_is_unique():
    OrderFactory(external_ref="SWIGGY-1")
    _refused(external_ref="SWIGGY-1")


def test_an_assigned_order_has_a_rider_and_a_created_one_has_none():
    _refused(status=OrderStatus.ASSIGNED, rider=None)
    _refused(status=OrderStatus.CREATED, rider=RiderFactory())


def test_a_delivered_order_has_a_delivery_time():
    _refused(status=OrderStatus.DELIVERED, rider=RiderFactory(), delivered_at=None)


@pytest.mark.parametrize("field", ["delivery_fee_paise", "cod_amount_paise"])
def test_amounts_cannot_be_negative(field):
    _refused(**{field: -1})


def test_coordinates_must_be_on_earth():
    _refused(drop_lat=95.0)


def test_metadata_containment_uses_the_gin_index():
    OrderFactory(metadata={"partner": "acme", "items": 3})
    OrderFactory(metadata={"partner": "other"})
    assert Order.objects.filter(metadata__contains={"partner": "acme"}).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("""EXPLAIN SELECT id FROM orders_order WHERE metadata @> '{"partner": "acme"}'""")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "order_metadata_gin" in plan
