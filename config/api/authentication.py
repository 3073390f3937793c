"""Token authentication for the API (its own module: settings name it, so it must not import DRF's views)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.utils.translation import gettext_lazy as _
from psycopg.sql import SQL, Identifier
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, except that

    - a key PostgreSQL cannot even look up is a 401, not a 500;
    - the user's rider profile and its city come in the same query (``user.rider``; none for staff and
      partners), so driver endpoints do not ask for them again on every request;
    - that query is written once per process (``_token_lookup``) instead of compiled by the ORM on every
      request: it runs before every API call, and compiling its four-table join was the largest single item in
      the profile of a GPS post, more than the batch's own INSERT (``bench/driver_profile.py``).
    """

    def authenticate_credentials(self, key: str) -> Any:
        if "\x00" in key:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = token_with_rider(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


@dataclass(frozen=True)
class _Columns:
    """One model's columns in the lookup's row: their attribute names and converters, in order."""

    model: type[Model]
    attnames: tuple[str, ...]
    pk_index: int
    converters: tuple[tuple[int, Callable[..., Any]], ...]  # (index, field.from_db_value) where a field has one

    @classmethod
    def of(cls, model: type[Model]) -> _Columns:
        fields = model._meta.concrete_fields
        return cls(
            model=model,
            attnames=tuple(f.attname for f in fields),
            pk_index=[f.primary_key for f in fields].index(True),
            converters=tuple((i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")),
        )

    def build(self, values: Sequence[Any]) -> Model | None:
        """The instance of these values; None when they are a LEFT JOIN's missing row (no primary key)."""
        if values[self.pk_index] is None:
            return None
        row = list(values)
        for index, convert in self.converters:
            row[index] = convert(row[index], None, connection)
        return self.model.from_db(connection.alias, self.attnames, row)


@cache
def _token_lookup() -> tuple[str, tuple[_Columns, ...]]:
    """The SQL of ``Token.objects.select_related("user", "user__rider__city").get(key=...)``, with the columns of
    each model from its ``_meta`` (so a new field is read as Django would), and how to split its row."""
    from rest_framework.authtoken.models import Token

    from fleet.models import City
    from riders.models import Rider

    user_model = get_user_model()
    parts = ((Token, "t"), (user_model, "u"), (Rider, "r"), (City, "c"))
    query = SQL(
        "SELECT {columns} FROM {token} t JOIN {user} u ON u.{user_pk} = t.{token_user} "
        "LEFT JOIN {rider} r ON r.{rider_user} = u.{user_pk} LEFT JOIN {city} c ON c.{city_pk} = r.{rider_city} "
        "WHERE t.{token_pk} = %s"
    ).format(
        columns=SQL(", ").join(
            [Identifier(alias, str(f.column)) for model, alias in parts for f in model._meta.concrete_fields]
        ),
        token=Identifier(Token._meta.db_table),
        user=Identifier(user_model._meta.db_table),
        rider=Identifier(Rider._meta.db_table),
        city=Identifier(City._meta.db_table),
        user_pk=Identifier(str(user_model._meta.pk.column)),
        token_user=Identifier(str(Token.user.field.column)),
        rider_user=Identifier(str(Rider.user.field.column)),
        city_pk=Identifier(str(City._meta.pk.column)),
        rider_city=Identifier(str(Rider.city.field.column)),
        token_pk=Identifier(str(Token._meta.pk.column)),
    )
    sql = query.as_string(None)
    return sql, tuple(_Columns.of(model) for model, _ in parts)


def token_with_rider(key: str) -> Any:
    """The token of ``key`` with its user, the user's rider (or none) and the rider's city loaded, as
    ``select_related`` would have them (``token.user.rider.city`` asks nothing more); None when there is none."""
    from rest_framework.authtoken.models import Token

    from riders.models import Rider

    sql, parts = _token_lookup()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    models: list[Model | None] = []
    start = 0
    for part in parts:
        values = row[start : start + len(part.attnames)]
        start += len(part.attnames)
        models.append(part.build(values))
    token, user, rider, city = models
    assert token is not None  # the WHERE matched it
    assert user is not None  # inner join: a token row has its user
    Token.user.field.set_cached_value(token, user)
    Rider.user.field.remote_field.set_cached_value(user, rider)  # None caches "no rider": no query later
    if rider is not None:
        Rider.user.field.set_cached_value(rider, user)
        Rider.city.field.set_cached_value(rider, city)
    return token
