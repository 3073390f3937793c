"""Admin building blocks every FleetOps model admin shares: CSV export, read-only admins, reason forms."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from config.errors import DomainError

# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class FleetModelAdmin(admin.ModelAdmin):
    """The base of every FleetOps model admin.

    Adds "Export CSV" to the changelist: the current list, with its filters, search and ordering.
    Rows stream from one ``values_list`` query (foreign keys as ids), so the export costs the same
    number of queries for ten rows as for a million. An action exports only the selected rows.
    """

    list_per_page = 50
    show_full_result_count = False
    change_list_template = "admin/csv_change_list.html"
    csv_fields: Sequence[str] | None = None
    actions = ["export_selected_csv"]

    def get_csv_fields(self) -> list[str]:
        if self.csv_fields is not None:
            return list(self.csv_fields)
        return [f.attname for f in self.model._meta.concrete_fields if f.attname != "pk"]

    def csv_response(self, queryset: QuerySet[Any]) -> StreamingHttpResponse:
        fields = self.get_csv_fields()
        writer = csv.writer(_Echo())

        def rows() -> Iterator[str]:
            yield writer.writerow(fields)
            for row in queryset.values_list(*fields).iterator(chunk_size=2000):
                yield writer.writerow([_safe_cell(v) for v in row])

        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.model._meta.model_name}-{stamp}.csv"'
        return response

    def export_csv_view(self, request: HttpRequest) -> HttpResponseBase:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect("../")
        return self.csv_response(changelist.get_queryset(request))

    @admin.action(description="Export selected rows as CSV")
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponseBase:
        return self.csv_response(queryset)

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv_view),
            name=f"{opts.app_label}_{opts.model_name}_export_csv",
        )
        return [export, *super().get_urls()]


class ReadOnlyAdminMixin:
    """For records the system writes and nobody edits: ledger entries, balances, event logs."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=255, widget=forms.TextInput(attrs={"size": 60}))


def reason_action(
    *,
    title: str,
    perform: Callable[[HttpRequest, QuerySet[Any], str], int],
    done: str,
) -> Callable[[Any, HttpRequest, QuerySet[Any]], HttpResponse | None]:
    """An admin action that first asks for a reason on an intermediate page, then runs ``perform``.

    ``perform`` returns how many rows changed; ``done`` is formatted with ``count``.
    """

    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                count = perform(request, queryset, form.cleaned_data["reason"])
            except DomainError as exc:
                modeladmin.message_user(request, exc.message, messages.ERROR)
                return None
            modeladmin.message_user(request, done.format(count=count), messages.SUCCESS)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "opts": modeladmin.model._meta,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/reason_action.html", context)

    return action
