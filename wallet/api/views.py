"""Wallet API for riders: the wallet, its entries, withdrawals and the statement. Thin: services decide,
selectors read, the API's exception handler maps their errors to HTTP."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from config.api.pagination import CursorPage
from config.api.schema import x_cache_header
from config.api.views import ApiView, validated, validated_query
from riders.api.views import IsRider, current_rider
from wallet import selectors, services
from wallet.api.serializers import AmountField, EntryOut, WalletOut, WithdrawalOut
from wallet.exports import statement_csv

X_CACHE = x_cache_header("HIT when the wallet came from Redis; MISS when it was read from the database.")


class WalletApi(ApiView):
    """The rider's wallet summary."""

    permission_classes = [IsRider]

    @extend_schema(
        responses={200: WalletOut},
        parameters=[X_CACHE],
        summary="Your balance, pending withdrawals, COD held, limits and newest entries",
        description="Cached in Redis and invalidated whenever a posting to your wallet commits (`X-Cache`). "
        "Amounts are decimal strings with two places.",
    )
    def get(self, request: Request) -> Response:
        cached = selectors.wallet_summary(rider_id=current_rider(request).pk)
        summary = cached.value
        body = WalletOut(
            {
                **summary,
                "cod_held_paise": max(0, -summary["cod_paise"]),
                "limits": {
                    "minimum": settings.WALLET_WITHDRAWAL_MIN_PAISE,
                    "maximum": settings.WALLET_WITHDRAWAL_MAX_PAISE,
                    "daily_cap": settings.WALLET_WITHDRAWAL_DAILY_CAP_PAISE,
                },
            }
        ).data
        return Response(body, headers={"X-Cache": "HIT" if cached.hit else "MISS"})


class NewestEntriesFirst(CursorPage):
    ordering = "-id"


class WalletEntryListApi(ApiView, ListAPIView):
    """The rider's ledger entries."""

    permission_classes = [IsRider]
    serializer_class = EntryOut
    pagination_class = NewestEntriesFirst

    def get_queryset(self) -> Any:
        return selectors.ledger_entry_list(rider_id=current_rider(self.request).pk)

    @extend_schema(summary="Your ledger entries, newest first (cursor pages)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class NewestRequestsFirst(CursorPage):
    ordering = ("-requested_at", "-id")


class WithdrawalListApi(ApiView, ListAPIView):
    """The rider's withdrawal requests; POST makes one."""

    permission_classes = [IsRider]
    serializer_class = WithdrawalOut
    pagination_class = NewestRequestsFirst
    idempotent_post = True
    error_statuses = (409, 422)

    class Input(serializers.Serializer):
        amount = AmountField(help_text='How much to withdraw, e.g. "500.00".')

    def get_queryset(self) -> Any:
        return selectors.withdrawal_list(rider_id=current_rider(self.request).pk)

    @extend_schema(summary="Your withdrawal requests and their status, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=Input,
        responses={201: WithdrawalOut},
        summary="Request a withdrawal; the amount is held from your balance at once",
        description="201 with the request (REQUESTED). Refusals are 422: `insufficient_balance`, "
        "`amount_below_minimum`, `amount_above_maximum`, `daily_cap_exceeded` (see `withdrawal_limits` in the "
        "wallet). Send an `Idempotency-Key`: a retry with the same key never requests twice, even after the "
        "24 h replay window (the key is kept with the request); the same key with another amount is a 409.",
    )
    def post(self, request: Request) -> Response:
        data = validated(self.Input, request)
        client_key = request.META.get(IDEMPOTENCY_HEADER, "").strip()
        result = services.withdrawal_request(
            rider_id=current_rider(request).pk,
            amount_paise=data["amount"],
            idempotency_key=services.request_key(client_key) if client_key else uuid.uuid4().hex,
        )
        return Response(WithdrawalOut(result.withdrawal).data, status=status.HTTP_201_CREATED)


class CsvRenderer(BaseRenderer):
    """``text/csv``, for content negotiation only: the statement streams its own CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data)


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class CsvOrJsonNegotiation(DefaultContentNegotiation):
    """Takes an ``Accept`` of CSV (the statement) or JSON (its errors); anything else is a 406. What DRF renders
    is always JSON: the only DRF responses of the view are errors. No ``?format=`` override."""

    settings = _NoFormatOverride()  # type: ignore[assignment]

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        super().select_renderer(request, [*renderers, CsvRenderer()])
        return JSONRenderer(), JSONRenderer.media_type


_EARLIEST = date(2000, 1, 1)
_LATEST = date(2999, 12, 31)


class WalletStatementApi(ApiView):
    """The rider's statement as CSV."""

    permission_classes = [IsRider]
    content_negotiation_class = CsvOrJsonNegotiation
    error_statuses = (400,)

    class Query(serializers.Serializer):
        """``from`` and ``to``: local dates, both included."""

        def get_fields(self) -> dict[str, serializers.Field]:
            return {
                "from": serializers.DateField(
                    required=False, help_text="First day (YYYY-MM-DD, portal time); default: 30 days before `to`."
                ),
                "to": serializers.DateField(required=False, help_text="Last day, included; default: today."),
            }

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            last = attrs.get("to") or timezone.localdate()
            first = attrs.get("from") or last - timedelta(days=30)
            for name, day in (("from", first), ("to", last)):
                if not _EARLIEST <= day <= _LATEST:
                    raise serializers.ValidationError({name: [f"Pick a day from {_EARLIEST} to {_LATEST}."]})
            if first > last:
                raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
            if (last - first).days + 1 > settings.WALLET_STATEMENT_MAX_DAYS:
                raise serializers.ValidationError(
                    {"to": [f"A statement covers at most {settings.WALLET_STATEMENT_MAX_DAYS} days."]}
                )
            return {"from": first, "to": last}

    @extend_schema(
        parameters=[Query],
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="CSV, streamed: `at, entry_id, account, type, description, order_id, credit, debit, "
                "wallet_balance, cod_balance`; the first line after the header is the opening balance.",
            )
        },
        summary="Your statement for a date range, as CSV",
        description="Every entry between `from` and `to` (local days, both included; at most "
        "`WALLET_STATEMENT_MAX_DAYS`, 366) with the balances after it. Amounts are decimals with two places; "
        "a text cell that a spreadsheet would run as a formula starts with `'`. Errors are JSON.",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = validated_query(self.Query, request)
        first: date = query["from"]
        last: date = query["to"]
        rider = current_rider(request)
        zone = timezone.get_current_timezone()
        start = datetime.combine(first, time.min, tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
        response = StreamingHttpResponse(
            statement_csv(rider_id=rider.pk, start=start, end=end), content_type="text/csv; charset=utf-8", status=200
        )
        response["Content-Disposition"] = f'attachment; filename="statement-{rider.pk}-{first}-{last}.csv"'
        response["Cache-Control"] = "private, no-store"
        return response
