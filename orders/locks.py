"""Row locks of the orders app. One order at a time; a rider lock comes from ``riders.locks``, after it."""

from __future__ import annotations

from config.errors import NotFound
from orders.models import Order


def lock_order(order_id: int) -> Order:
    """``SELECT ... FOR UPDATE`` on the order (with its city); ``NotFound`` when there is none.

    Every transition of an order starts here, so two concurrent transitions of one order run one after the
    other and the second sees the first's status.
    """
    order = Order.objects.select_for_update(of=("self",)).select_related("city").filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order
