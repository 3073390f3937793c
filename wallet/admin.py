from django.contrib import admin

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin
from config.money import format_minor
from wallet.models import Balance, LedgerEntry, LedgerKey, WithdrawalRequest


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    """The ledger is append-only in the database too; admin offers no add, change or delete."""

    list_display = ["id", "rider", "account", "entry_type", "amount", "idempotency_key", "order", "created_at"]
    list_filter = ["account", "entry_type", "rider__city"]
    search_fields = ["idempotency_key", "rider__mobile", "rider__name", "order__external_ref"]
    list_select_related = ["rider", "order"]
    date_hierarchy = "created_at"

    @admin.display(description="Amount", ordering="amount_paise")
    def amount(self, entry: LedgerEntry) -> str:
        return format_minor(entry.amount_paise)


@admin.register(LedgerKey)
class LedgerKeyAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    list_display = ["idempotency_key", "rider_id", "entry_id"]
    search_fields = ["idempotency_key"]


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    list_display = ["rider", "wallet", "cod", "entry_count", "updated_at"]
    list_filter = ["rider__city"]
    search_fields = ["rider__mobile", "rider__name"]
    list_select_related = ["rider"]

    @admin.display(description="Wallet", ordering="wallet_paise")
    def wallet(self, balance: Balance) -> str:
        return format_minor(balance.wallet_paise)

    @admin.display(description="COD", ordering="cod_paise")
    def cod(self, balance: Balance) -> str:
        return format_minor(balance.cod_paise)


@admin.register(WithdrawalRequest)
class WithdrawalRequestAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    """Read-only until approval and payout go through the wallet service (maker-checker)."""

    list_display = ["id", "rider", "amount", "status", "requested_at", "approved_by", "payout_reference"]
    list_filter = ["status", "rider__city"]
    search_fields = ["rider__mobile", "rider__name", "payout_reference", "idempotency_key"]
    list_select_related = ["rider", "approved_by"]
    date_hierarchy = "requested_at"

    @admin.display(description="Amount", ordering="amount_paise")
    def amount(self, withdrawal: WithdrawalRequest) -> str:
        return format_minor(withdrawal.amount_paise)
