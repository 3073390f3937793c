"""Row locks of the orders app. One order at a time; a rider lock comes from ``riders.locks``, after it."""

from __future__ import annotations

from functools import cache

from config.errors import NotFound
from fleet.models import City
from orders.models import Order


@cache
def _lock_statement() -> tuple[str, tuple[str, ...]]:
    """The lock's SQL, built once a process: the order's row and its city's, with the city's columns aliased
    ``_city_<column>``; and those aliases in the order of ``City``'s fields."""
    city_fields = City._meta.concrete_fields
    aliases = tuple(f"_city_{field.column}" for field in city_fields)
    columns = ", ".join(f'c."{field.column}" AS "{alias}"' for field, alias in zip(city_fields, aliases, strict=True))
    # Only names from the models' own metadata go into the text; the order's id is a parameter.
    sql = (
        f'SELECT o.*, {columns} FROM "{Order._meta.db_table}" o '  # noqa: S608
        f'JOIN "{City._meta.db_table}" c ON c."id" = o."city_id" '
        'WHERE o."id" = %s FOR UPDATE OF o'
    )
    return sql, aliases


def lock_order(order_id: int) -> Order:
    """``SELECT ... FOR UPDATE`` on the order (with its city); ``NotFound`` when there is none.

    Every transition of an order starts here, so two concurrent transitions of one order run one after the
    other and the second sees the first's status. A raw query: compiling the ORM's
    ``select_for_update().select_related("city")`` cost 1.1 ms of CPU a call more than this, on every step
    of every order (bench/assignment_bench.py).
    """
    sql, aliases = _lock_statement()
    order = next(iter(Order.objects.raw(sql, [order_id])), None)
    if order is None:
        raise NotFound("No such order.")
    values = [order.__dict__.pop(alias) for alias in aliases]
    city = City.from_db(order._state.db, [field.attname for field in City._meta.concrete_fields], values)
    Order._meta.get_field("city").set_cached_value(order, city)
    return order
