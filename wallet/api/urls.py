from django.urls import path

from wallet.api import views

urlpatterns = [
    path("driver/wallet/", views.WalletApi.as_view(), name="driver-wallet"),
    path("driver/wallet/entries/", views.WalletEntryListApi.as_view(), name="driver-wallet-entries"),
    path("driver/wallet/statement/", views.WalletStatementApi.as_view(), name="driver-wallet-statement"),
    path("driver/withdrawals/", views.WithdrawalListApi.as_view(), name="driver-withdrawals"),
]
