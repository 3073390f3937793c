"""Wallet admin: the ledger and balances read-only, withdrawals approved and rejected through the wallet
service (maker-checker), a rider's wallet page with COD deposits, payouts CSV, and reconciliation's findings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from config.admin_tools import FleetModelAdmin, ReadOnlyAdminMixin, ReasonForm
from config.errors import DomainError
from config.money import format_minor
from riders.models import Rider
from wallet import selectors, services
from wallet.exports import payouts_csv
from wallet.models import Balance, LedgerEntry, LedgerKey, ReconciliationDrift, WithdrawalRequest
from wallet.money import paise_parse


def _wallet_link(rider_id: int) -> str:
    return format_html('<a href="{}">wallet</a>', reverse("admin:wallet_rider_wallet", args=[rider_id]))


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


class DriftFilter(admin.SimpleListFilter):
    title = "latest reconciliation"
    parameter_name = "drift"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Drift found"), ("no", "In agreement")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Balance]) -> QuerySet[Balance] | None:
        if self.value() not in {"yes", "no"}:
            return None
        latest = selectors.reconciliation_latest()
        drifting = Exists(
            ReconciliationDrift.objects.filter(rider_id=OuterRef("rider_id"), run_id=latest.pk if latest else None)
        )
        return queryset.filter(drifting) if self.value() == "yes" else queryset.exclude(drifting)


class CodDepositForm(forms.Form):
    amount = forms.CharField(max_length=14, help_text='Cash handed in, e.g. "1250.00".')
    receipt = forms.CharField(max_length=64, help_text="Receipt or bank slip number; one receipt is recorded once.")
    memo = forms.CharField(max_length=255, required=False)

    def clean_amount(self) -> int:
        paise = paise_parse(self.cleaned_data["amount"])
        if paise is None or paise <= 0:
            raise forms.ValidationError('Write a positive amount with at most 2 decimal places, e.g. "1250.00".')
        return paise


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    """Balances are moved only by postings. Each rider's wallet page (balance, holds, entries, drift, COD
    deposits) and the reconciliation report hang off this admin."""

    list_display = ["rider", "wallet", "cod", "entry_count", "updated_at", "wallet_page"]
    list_filter = [DriftFilter, "rider__city"]
    search_fields = ["rider__mobile", "rider__name"]
    list_select_related = ["rider"]
    change_list_template = "admin/wallet/balance/change_list.html"

    @admin.display(description="Wallet", ordering="wallet_paise")
    def wallet(self, balance: Balance) -> str:
        return format_minor(balance.wallet_paise)

    @admin.display(description="COD", ordering="cod_paise")
    def cod(self, balance: Balance) -> str:
        return format_minor(balance.cod_paise)

    @admin.display(description="Rider's wallet")
    def wallet_page(self, balance: Balance) -> str:
        return _wallet_link(balance.rider_id)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("rider/<int:rider_id>/", wrap(self.rider_wallet_view), name="wallet_rider_wallet"),
            path("reconciliation/", wrap(self.reconciliation_view), name="wallet_reconciliation"),
            *super().get_urls(),
        ]

    def rider_wallet_view(self, request: HttpRequest, rider_id: int) -> HttpResponse:
        """Balance, holds, newest entries and reconciliation drift of one rider; POST records a COD deposit."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rider = get_object_or_404(Rider.objects.select_related("city"), pk=rider_id)
        may_deposit = request.user.has_perm("wallet.record_cod_deposit")
        form = CodDepositForm(request.POST if request.method == "POST" else None)
        if request.method == "POST":
            if not may_deposit:
                raise PermissionDenied
            if form.is_valid():
                try:
                    posting = services.cod_deposit_record(
                        rider_id=rider.pk,
                        amount_paise=form.cleaned_data["amount"],
                        receipt=form.cleaned_data["receipt"],
                        memo=form.cleaned_data["memo"],
                        actor=request.user,
                    )
                except DomainError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    done = "Recorded" if posting.created else "Already recorded:"
                    self.message_user(
                        request,
                        f"{done} a COD deposit of {format_minor(posting.entry.amount_paise)} for {rider}.",
                        messages.SUCCESS if posting.created else messages.WARNING,
                    )
                    return HttpResponseRedirect(request.path)
        balance = Balance.objects.filter(rider_id=rider.pk).first()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Wallet of {rider}",
            "opts": self.model._meta,
            "rider": rider,
            "balance": balance,
            "cod_held_paise": max(0, -(balance.cod_paise if balance else 0)),
            "holds": list(selectors.withdrawals_pending(rider_id=rider.pk)),
            "entries": list(selectors.ledger_entry_list(rider_id=rider.pk).order_by("-id")[:50]),
            "drifts": list(selectors.reconciliation_drifts(rider_id=rider.pk)[:20]),
            "form": form if may_deposit else None,
            "ledger_url": reverse("admin:wallet_ledgerentry_changelist") + "?" + urlencode({"q": rider.mobile}),
        }
        return TemplateResponse(request, "admin/wallet/rider_wallet.html", context)

    def reconciliation_view(self, request: HttpRequest) -> HttpResponse:
        """The latest runs and the drift they found, newest first. Read-only: drift is never fixed here."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Wallet reconciliation",
            "opts": self.model._meta,
            "runs": list(selectors.reconciliation_runs()[:30]),
            "drifts": list(selectors.reconciliation_drifts()[:500]),
        }
        return TemplateResponse(request, "admin/wallet/reconciliation.html", context)


class PayoutForm(forms.Form):
    payout_reference = forms.CharField(
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text="The bank or UPI batch reference of the payout. Needed to mark a withdrawal paid; a first "
        "approval of a withdrawal that needs two approvers does not take it.",
    )


class PayoutRangeForm(forms.Form):
    start = forms.DateField(label="From", help_text="First day paid, YYYY-MM-DD (portal time).")
    end = forms.DateField(label="To", help_text="Last day paid, included.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("From must not be after To.")
        return data


@admin.register(WithdrawalRequest)
class WithdrawalRequestAdmin(ReadOnlyAdminMixin, FleetModelAdmin):
    """No edits: finance approves (pays out, maker-checker above the threshold) or rejects (the hold is
    reversed) with the actions, which post through the wallet service. Actions need the finance group."""

    list_display = [
        "id",
        "rider",
        "amount",
        "status",
        "requested_at",
        "approved_by",
        "second_approved_by",
        "payout_reference",
        "decided_at",
        "rider_wallet",
    ]
    list_filter = ["status", "rider__city"]
    search_fields = ["rider__mobile", "rider__name", "payout_reference", "idempotency_key"]
    list_select_related = ["rider", "approved_by", "second_approved_by"]
    date_hierarchy = "requested_at"
    actions = ["approve_withdrawals", "reject_withdrawals", "export_selected_csv"]
    change_list_template = "admin/wallet/withdrawalrequest/change_list.html"

    @admin.display(description="Amount", ordering="amount_paise")
    def amount(self, withdrawal: WithdrawalRequest) -> str:
        return format_minor(withdrawal.amount_paise)

    @admin.display(description="Rider's wallet")
    def rider_wallet(self, withdrawal: WithdrawalRequest) -> str:
        return _wallet_link(withdrawal.rider_id)

    def has_finance_permission(self, request: HttpRequest) -> bool:
        return selectors.user_is_finance(request.user)

    @admin.action(description="Approve / pay out selected withdrawals (payout reference)", permissions=["finance"])
    def approve_withdrawals(self, request: HttpRequest, queryset: QuerySet[WithdrawalRequest]) -> HttpResponse | None:
        def approve(data: dict[str, Any]) -> services.Decisions:
            return services.withdrawals_approve(
                withdrawal_ids=list(queryset.values_list("pk", flat=True)),
                actor=request.user,
                payout_reference=data["payout_reference"],
            )

        return self._ask_then(request, queryset, "Approve withdrawals", PayoutForm, approve)

    @admin.action(description="Reject selected withdrawals (reason; the hold goes back)", permissions=["finance"])
    def reject_withdrawals(self, request: HttpRequest, queryset: QuerySet[WithdrawalRequest]) -> HttpResponse | None:
        def reject(data: dict[str, Any]) -> services.Decisions:
            return services.withdrawals_reject(
                withdrawal_ids=list(queryset.values_list("pk", flat=True)), actor=request.user, reason=data["reason"]
            )

        return self._ask_then(request, queryset, "Reject withdrawals", ReasonForm, reject)

    def _ask_then(
        self,
        request: HttpRequest,
        queryset: QuerySet[WithdrawalRequest],
        title: str,
        form_class: type[forms.Form],
        perform: Callable[[dict[str, Any]], services.Decisions],
    ) -> HttpResponse | None:
        """An intermediate page asks for ``form_class``; once it is valid, ``perform`` runs and its decisions
        are reported (a warning when some withdrawals could not move)."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                decisions = perform(form.cleaned_data)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, decisions.summary(), messages.WARNING if decisions.refused else messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "opts": self.model._meta,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/reason_action.html", context)

    def get_urls(self) -> list[URLPattern]:
        payouts = path(
            "payouts/", self.admin_site.admin_view(self.payouts_view), name="wallet_withdrawalrequest_payouts"
        )
        return [payouts, *super().get_urls()]

    def payouts_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """Asks for a date range; answers the withdrawals paid in it as CSV (streamed, formula-safe)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PayoutRangeForm(request.GET or None)
        if form.is_valid():
            first: date = form.cleaned_data["start"]
            last: date = form.cleaned_data["end"]
            zone = timezone.get_current_timezone()
            start = datetime.combine(first, time.min, tzinfo=zone)
            end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
            response = StreamingHttpResponse(
                payouts_csv(selectors.payouts_paid(start=start, end=end)), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = f'attachment; filename="payouts-{first}-{last}.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Export payouts",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/wallet/payouts_export.html", context)
