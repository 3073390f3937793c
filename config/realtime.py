"""The one module that publishes to the channel layer. Group names come from the functions here.

Publishing happens after commit (callers use ``transaction.on_commit``). Every payload is
round-tripped through JSON first, so an event that could not reach a browser fails where it is made.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def dispatch_group(city_code: str) -> str:
    """Dispatchers watching one city."""
    return f"dispatch.{city_code.upper()}"


def publish(group: str, event_type: str, payload: dict[str, Any]) -> None:
    message = {"type": event_type.replace(".", "_"), "event": event_type, "payload": json.loads(json.dumps(payload))}
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, message)
