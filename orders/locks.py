"""Row locks of the orders app. One order at a time; a rider lock comes from ``riders.locks``, after it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field

from config.db import prepared_cursor
from config.errors import NotFound
from fleet.models import City
from orders.models import Order


@dataclass(frozen=True)
class _Lock:
    sql: str
    order_names: list[str]
    city_names: list[str]
    #: (position in the row, the field's ``from_db_value``): what the ORM would run on those columns.
    converters: list[tuple[int, Callable[..., Any]]]


def _fields(model: Any) -> list[Field[Any, Any]]:
    return list(model._meta.concrete_fields)


@cache
def _lock() -> _Lock:
    """The lock's statement, built once a process: the order's columns and its city's, by the models' metadata."""
    order_fields, city_fields = _fields(Order), _fields(City)
    columns = [f'o."{f.column}"' for f in order_fields] + [f'c."{f.column}"' for f in city_fields]
    # Only names from the models' own metadata go into the text; the order's id is a parameter.
    sql = (
        f'SELECT {", ".join(columns)} FROM "{Order._meta.db_table}" o '  # noqa: S608
        f'JOIN "{City._meta.db_table}" c ON c."id" = o."city_id" WHERE o."id" = %s FOR UPDATE OF o'
    )
    converters = [
        (index, field.from_db_value)
        for index, field in enumerate([*order_fields, *city_fields])
        if hasattr(field, "from_db_value")
    ]
    return _Lock(
        sql=sql,
        order_names=[f.attname for f in order_fields],
        city_names=[f.attname for f in city_fields],
        converters=converters,
    )


def lock_order(order_id: int) -> Order:
    """``SELECT ... FOR UPDATE`` on the order (with its city); ``NotFound`` when there is none.

    Every transition of an order starts here, so two concurrent transitions of one order run one after the
    other and the second sees the first's status. One hand-built statement and ``Model.from_db``, as the ORM
    builds instances: the ORM compiled ``select_for_update().select_related("city")`` on every call, and a raw
    queryset resolved its column mapping on every call, on every step of every order (cProfile of
    bench/assignment_bench.py's calls).
    """
    lock = _lock()
    with prepared_cursor() as cursor:
        cursor.execute(lock.sql, [order_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such order.")
    values = list(row)
    for index, convert in lock.converters:
        values[index] = convert(values[index], None, connection)
    split = len(lock.order_names)
    order = Order.from_db(connection.alias, lock.order_names, values[:split])
    city = City.from_db(connection.alias, lock.city_names, values[split:])
    Order._meta.get_field("city").set_cached_value(order, city)
    return order
