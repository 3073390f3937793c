"""OpenAPI: every operation documents the error responses it can give, in the one error shape.

``tests/test_api_schema.py`` runs Schemathesis against this schema: a status an operation really
answers with must be listed here, and every response must match what is documented.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. kyc_not_approved.")
    message = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), help_text="Per-field messages for invalid input (empty otherwise)."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def x_cache_header(description: str) -> OpenApiParameter:
    """The ``X-Cache: HIT|MISS`` response header of a read served through Redis."""
    return OpenApiParameter(
        name="X-Cache",
        location=OpenApiParameter.HEADER,
        type=OpenApiTypes.STR,
        enum=["HIT", "MISS"],
        response=[200],
        required=True,
        description=description,
    )


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    type={"type": "string", "maxLength": 255},
    required=False,
    description="Any unique string (≤ 255 chars). Repeating it with the same body replays the first response "
    "for 24 h; with a different body it is a 409.",
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    name="Idempotent-Replayed",
    location=OpenApiParameter.HEADER,
    type=OpenApiTypes.STR,
    enum=["true"],
    response=True,
    required=False,
    description="Present when this is the stored response to an earlier request with the same Idempotency-Key.",
)
RESPONSE_TIME = OpenApiParameter(
    name="X-Response-Time",
    location=OpenApiParameter.HEADER,
    type=OpenApiTypes.STR,
    response=True,
    required=True,
    description="Time the server spent on the request, e.g. 12.3ms.",
)
RETRY_AFTER = OpenApiParameter(
    name="Retry-After",
    location=OpenApiParameter.HEADER,
    type=OpenApiTypes.INT,
    response=[429, 503],
    required=True,
    description="429: seconds until the rate limit window resets. 503: seconds to wait before retrying.",
)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Statuses that only a request body can cause: listed in a view's ``error_statuses``, they apply to its
# POST/PUT/PATCH, not to its GET.
_BODY_STATUSES = frozenset({413, 415})

# Component names that differ from the view's name. drf-spectacular names an enum after its field, or after
# component + field when one field name carries several choice sets; ``Duty`` + ``status`` would then be
# ``DutyStatusEnum``, the very name of ``RiderOut.duty_status``'s enum, and one of the two silently
# overwrote the other (the profile documented ``duty_status`` without ``AUTO_OFF``).
_COMPONENT_NAMES = {"riders.api.views.DutyApi.Input": "DutyChange"}


class FleetAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        """A view's nested ``Input`` / ``Output`` is named after the view: ``SignupApi.Input`` is ``Signup``."""
        name = super().get_serializer_name(serializer, direction)
        qualname = type(serializer).__qualname__
        renamed = _COMPONENT_NAMES.get(f"{type(serializer).__module__}.{qualname}")
        if renamed:
            return renamed
        if "." in qualname and name in {"Input", "Output"}:
            owner = qualname.rsplit(".", 1)[0].removesuffix("Api")
            return owner if name == "Input" else f"{owner}Output"
        return name

    def _error_statuses(self) -> list[int]:
        """The error statuses of this operation; each is answered with ``ErrorSerializer``.

        Every operation: 406 (an ``Accept`` that excludes JSON), 429 and 503 (``database_unavailable``). A body:
        400, 413 (larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``) and 415. A permission other than AllowAny: 401 and
        403. A path parameter: 404. A paginated list: 400 (a damaged cursor or page size). An idempotent POST: 409.
        Plus the view's own ``error_statuses``.
        """
        view: Any = self.view
        statuses = {406, 429, 503, *getattr(view, "error_statuses", ())}
        if self.method in _BODY_METHODS:
            statuses |= {400, 413, 415}
        else:
            statuses -= _BODY_STATUSES
        if not any(isinstance(p, AllowAny) for p in view.get_permissions()):
            statuses |= {401, 403}
        if "{" in self.path:
            statuses.add(404)
        if self.method == "GET" and self._is_list_view() and getattr(view, "pagination_class", None):
            statuses.add(400)
        if self._is_idempotent_post():
            statuses.add(409)
        return sorted(statuses)

    def _is_idempotent_post(self) -> bool:
        return self.method == "POST" and bool(getattr(self.view, "idempotent_post", False))

    def get_override_parameters(self) -> list[Any]:
        parameters = [*super().get_override_parameters(), RESPONSE_TIME, RETRY_AFTER]
        if self._is_idempotent_post():
            parameters += [IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED]
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self._error_statuses():
            if str(status) not in responses:
                response = self._get_response_for_code(ErrorSerializer, str(status), direction=direction)
                response["description"] = HTTPStatus(status).phrase
                responses[str(status)] = response
        return responses
