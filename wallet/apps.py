from django.apps import AppConfig


class WalletConfig(AppConfig):
    name = "wallet"
    verbose_name = "Wallet"

    def ready(self) -> None:
        from orders.events import order_delivered
        from wallet.receivers import order_delivered_post

        order_delivered.connect(order_delivered_post, dispatch_uid="wallet.order_delivered_post")
