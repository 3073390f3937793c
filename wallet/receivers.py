"""What the wallet does when other apps' events happen. Connected in ``WalletConfig.ready``."""

from __future__ import annotations

from typing import Any

from wallet import services


def order_delivered_post(
    sender: Any, *, order_id: int, rider_id: int, delivery_fee_paise: int, cod_amount_paise: int, **kwargs: Any
) -> None:
    """``orders.events.order_delivered``: the earning and the COD, inside the delivery's transaction."""
    services.order_delivery_post(
        order_id=order_id, rider_id=rider_id, delivery_fee_paise=delivery_fee_paise, cod_amount_paise=cod_amount_paise
    )
