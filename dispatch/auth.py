"""Websocket authentication of the rider's app: the driver API's token, from a header or the query string."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from rest_framework import exceptions

from config.api.authentication import TokenAuthentication


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """``Authorization: Token <key>`` if sent, else ``?token=<key>`` (browsers and some websocket clients
    cannot set headers on a websocket)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, key = value.decode("latin1").partition(" ")
            if kind.lower() == "token" and key.strip():
                return key.strip()
    tokens = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token")
    return tokens[0] if tokens else None


@database_sync_to_async
def _rider_of(key: str) -> tuple[Any, int | None]:
    """The token's user and rider id (the driver REST API's own lookup); (None, None) for a bad token."""
    try:
        user, _ = TokenAuthentication().authenticate_credentials(key)
    except exceptions.AuthenticationFailed:
        return None, None
    rider = getattr(user, "rider", None)
    return user, (rider.pk if rider is not None else None)


class DriverTokenAuthMiddleware(BaseMiddleware):
    """Puts ``rider_id`` (None when the token is missing, wrong, or not a rider's) in the scope."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        key = token_from_scope(scope)
        user, rider_id = await _rider_of(key) if key else (None, None)
        scope = dict(scope, rider_id=rider_id)
        if user is not None:
            scope["user"] = user
        return await super().__call__(scope, receive, send)
