"""Events the orders app publishes: after commit to dispatchers, the rider's app and the trip's tracking page;
and the in-process ``order_delivered`` signal other apps subscribe to (the wallet posts earnings from it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.dispatch import Signal

from config.realtime import dispatch_group, order_track_group, publish_many, rider_group
from orders.models import Order, OrderOffer

#: Sent once per delivery INSIDE the delivery's transaction, with ``order_id``, ``rider_id``,
#: ``delivery_fee_paise`` and ``cod_amount_paise``: a receiver's writes (the wallet's earning and COD postings)
#: commit with the delivery or not at all, so no crash between the two can lose or double money. Receivers
#: write through their own services, idempotently (keyed by the order), and raise to refuse the delivery.
order_delivered = Signal()


def order_payload(order: Order) -> dict[str, Any]:
    """What dispatchers, the rider and the tracking page are told of an order; JSON-ready."""
    return {
        "order_id": order.pk,
        "external_ref": order.external_ref,
        "status": order.status,
        "rider_id": order.rider_id,
        "city": order.city.code,
        "is_flagged": order.is_flagged,
        "updated_at": order.updated_at.isoformat(),
    }


def offer_payload(offer: OrderOffer) -> dict[str, Any]:
    """What the rider's app is told of an offer (``order.offered``); JSON-ready."""
    order = offer.order
    return {
        "offer_id": offer.pk,
        "order_id": order.pk,
        "external_ref": order.external_ref,
        "city": order.city.code,
        "pickup": {"lat": order.pickup_lat, "lon": order.pickup_lon, "address": order.pickup_address},
        "drop": {"lat": order.drop_lat, "lon": order.drop_lon, "address": order.drop_address},
        "delivery_fee_paise": order.delivery_fee_paise,
        "cod_amount_paise": order.cod_amount_paise,
        "distance_m": offer.distance_m,
        "offered_at": offer.offered_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
    }


def offer_offered(offer: OrderOffer) -> tuple[str, str, dict[str, Any]]:
    """The ``order.offered`` event of an offer, to its rider's group: for ``order_changed``'s ``also``."""
    return rider_group(offer.rider_id), "order.offered", offer_payload(offer)


def order_changed(
    payload: dict[str, Any],
    previous_rider_id: int | None = None,
    also: Sequence[tuple[str, str, dict[str, Any]]] = (),
) -> None:
    """Pushes an order's new state (``order_payload``, taken when it changed) to the city's dispatchers, its
    tracking page, its rider, and the rider who just lost it (a reassignment or an expired offer), then the
    ``also`` events that came with the change (an assignment's offer): one hand-off to the channel layer,
    no database read."""
    groups = [dispatch_group(payload["city"]), order_track_group(payload["order_id"])]
    groups += [rider_group(r) for r in (payload["rider_id"], previous_rider_id) if r is not None]
    groups = list(dict.fromkeys(groups))  # the same rider twice is one group
    publish_many([*((group, "order.changed", payload) for group in groups), *also])


def order_delivered_send(order: Order) -> None:
    """Tells subscribers of a delivery; called inside its transaction (see ``order_delivered``)."""
    order_delivered.send(
        sender=Order,
        order_id=order.pk,
        rider_id=order.rider_id,
        delivery_fee_paise=order.delivery_fee_paise,
        cod_amount_paise=order.cod_amount_paise,
    )
