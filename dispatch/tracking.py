"""Public tracking links: each order's own random token (``Order.tracking_token``: 32 bytes of
``secrets.token_urlsafe``, unique, made with the order), so a link cannot be guessed or edited into another
order's, and giving an order a new token revokes the old link."""

from __future__ import annotations

from orders.models import Order

#: The longest token the column holds: anything longer is not one of ours, and is not looked up.
_MAX_LENGTH = Order._meta.get_field("tracking_token").max_length or 48


def order_id_from_token(token: str) -> int | None:
    """The order a tracking token belongs to, or None (one indexed lookup; nothing for a malformed token)."""
    if not token or len(token) > _MAX_LENGTH or "\x00" in token:
        return None
    return Order.objects.filter(tracking_token=token).values_list("pk", flat=True).first()
