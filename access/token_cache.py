"""Token authentication through a short-lived Redis cache, for the read endpoints of staff and partners.

A staff or partner dashboard polls the same endpoints with the same token many times a minute; reading the
token and its user from PostgreSQL on each call was most of a cached read's cost. ``CachedTokenAuthentication``
keeps what authentication and the staff-or-partner check need (the user's own columns, not the password hash,
and whether the user is a partner) in Redis for ``TOKEN_CACHE_TTL_S``, under a digest of the token (a Redis
dump lists no usable token). It is the API's token authentication (``REST_FRAMEWORK`` in settings: one class,
so one security scheme in the OpenAPI schema); a view opts in to the cache with ``token_cache = True``, every
other view reads the token from the database as before.

Only accounts without a rider profile are cached: the driver endpoints need the rider's current row, which
the plain ``TokenAuthentication`` joins in the token's own query, so caching a rider would save nothing and
could serve a stale duty status.

Revocation stays immediate. Every change that can end or narrow a token's access writes a tombstone over the
token's entry, at once and again after the transaction commits: the token deleted (signing out, suspension,
admin, the user deleted), the user saved (deactivated, no longer staff), the user's groups changed, a group
renamed or deleted. A reader stores an entry only with ``add`` (SET NX), so a reader that read the token
before the revocation committed cannot write it back over the tombstone; a tombstone makes the next reads go
to PostgreSQL until it expires. Redis down: every read goes to PostgreSQL; a tombstone that could not be
written is logged, and the entry it should have replaced lives at most ``TOKEN_CACHE_TTL_S``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from rest_framework import exceptions
from rest_framework.request import Request

from config.api.authentication import TokenAuthentication

logger = logging.getLogger("fleetops.access.tokens")

#: How long a cached token may be served without PostgreSQL: the bound on a change no signal reports (a
#: queryset ``update()`` of users, or a revocation while Redis was unreachable).
TOKEN_CACHE_TTL_S = 30
#: The user's column left out of the cache (deferred: loaded from the database if ever read).
UNCACHED_USER_FIELDS = frozenset({"password"})
_REVOKED = "revoked"


def _cache_key(token_key: str) -> str:
    return "auth:token:" + hashlib.sha256(token_key.encode()).hexdigest()


class CachedTokenAuthentication(TokenAuthentication):
    """``TokenAuthentication`` whose staff and partner tokens are read from Redis on the views that set
    ``token_cache = True`` (see the module); ``use_cache`` forces it, for callers without a view."""

    def __init__(self, *, use_cache: bool = False) -> None:
        self.use_cache = use_cache

    def authenticate(self, request: Request) -> Any:
        view = (getattr(request, "parser_context", None) or {}).get("view")
        self.use_cache = self.use_cache or bool(getattr(view, "token_cache", False))
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> Any:
        if not self.use_cache:
            return super().authenticate_credentials(key)
        if "\x00" in key:
            raise exceptions.AuthenticationFailed("Invalid token.")
        cache_key = _cache_key(key)
        try:
            cached = cache.get(cache_key)
        except Exception:  # Redis down: the database answers
            logger.warning("token cache unavailable; reading the token from the database", exc_info=True)
            return super().authenticate_credentials(key)
        if isinstance(cached, dict):
            return _credentials(key, cached)
        from config.api.views import is_partner  # DRF's views: not at import (the app registry imports this)

        user, token = super().authenticate_credentials(key)
        if cached is None and not hasattr(user, "rider"):  # not revoked lately; rider joined by the query
            columns = {name: getattr(user, name) for name in _cached_user_fields()}
            # Staff pass the staff-or-partner check on their own: asked lazily if ever, not cached.
            entry = {"user": columns, "is_partner": None if user.is_staff else is_partner(user)}
            try:
                cache.add(cache_key, entry, timeout=TOKEN_CACHE_TTL_S)
            except Exception:
                logger.warning("token cache unavailable; token not cached", exc_info=True)
        return (user, token)


def _cached_user_fields() -> list[str]:
    """The user's columns kept in the cache, in the model's order (what ``Model.from_db`` expects)."""
    return [f.attname for f in get_user_model()._meta.concrete_fields if f.attname not in UNCACHED_USER_FIELDS]


def _credentials(key: str, entry: dict[str, Any]) -> tuple[Any, Any]:
    """The user (its password deferred: read from the database if ever asked for) and the token, as the
    database would have given them; no rider profile (only such users are cached)."""
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    names = [name for name in _cached_user_fields() if name in entry["user"]]
    user = user_model.from_db(DEFAULT_DB_ALIAS, names, [entry["user"][name] for name in names])
    user_model.rider.related.set_cached_value(user, None)
    if entry["is_partner"] is not None:
        user._fleetops_is_partner = entry["is_partner"]  # type: ignore[attr-defined]  # ``is_partner``'s memo
    return user, Token(key=key, user=user)


def tokens_revoke_cached(*, token_keys: Iterable[str]) -> None:
    """Tombstones over these tokens' cache entries: now, and again once the current transaction commits (a
    reader may have read the token before the commit). Never raises: the database stays authoritative."""
    keys = [_cache_key(key) for key in token_keys]
    if not keys:
        return
    _tombstone(keys)
    transaction.on_commit(partial(_tombstone, keys))


def users_revoke_cached(*, user_ids: Iterable[int]) -> None:
    """``tokens_revoke_cached`` for every token of these users."""
    from rest_framework.authtoken.models import Token

    ids = list(user_ids)
    if ids:
        tokens_revoke_cached(token_keys=Token.objects.filter(user_id__in=ids).values_list("key", flat=True))


def _tombstone(keys: list[str]) -> None:
    try:
        cache.set_many(dict.fromkeys(keys, _REVOKED), timeout=TOKEN_CACHE_TTL_S)
    except Exception:
        logger.error(
            "token cache revocation failed; a revoked token may be accepted for up to %s s",
            TOKEN_CACHE_TTL_S,
            exc_info=True,
        )


# --- Signal receivers (connected by ``access.apps.AccessConfig.ready``) -------------------------------------


def _token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    tokens_revoke_cached(token_keys=[instance.key])


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # no token yet; a sign-in's timestamp changes no access
    users_revoke_cached(user_ids=[instance.pk])


def _groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    """``user.groups`` (``reverse`` False: ``instance`` is a user) or ``group.user_set`` changed."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        users_revoke_cached(user_ids=[instance.pk])
    elif action == "pre_clear":
        users_revoke_cached(user_ids=instance.user_set.values_list("pk", flat=True))
    else:
        users_revoke_cached(user_ids=pk_set or ())


def _group_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """A group renamed or deleted: its members may gain or lose being partners."""
    if not created:
        users_revoke_cached(user_ids=instance.user_set.values_list("pk", flat=True))


def connect_signals() -> None:
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="access.tokens.token_deleted")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="access.tokens.user_saved")
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid="access.tokens.groups")
    post_save.connect(_group_changed, sender=Group, dispatch_uid="access.tokens.group_saved")
    pre_delete.connect(_group_changed, sender=Group, dispatch_uid="access.tokens.group_deleted")
