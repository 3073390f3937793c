"""Public tracking links: an order's id, signed, so a link cannot be guessed or changed into another order's."""

from __future__ import annotations

from django.core import signing

SALT = "orders.track"


def track_token(order_id: int) -> str:
    """The unguessable token of an order's public tracking page (``/track/<token>/``) and its websocket."""
    return signing.dumps(order_id, salt=SALT, compress=True)


def order_id_from_token(token: str) -> int | None:
    """The order a tracking token names, or None when the token is not one we signed."""
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    return value if type(value) is int else None
