"""OpenAPI: every operation documents the error responses it can give, in the one error shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from drf_spectacular.openapi import AutoSchema
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


IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (≤ 255 chars). Repeating it with the same body replays the first response "
    "for 24 h; with a different body it is a 409.",
)


class FleetAutoSchema(AutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        """A view's nested ``Input`` / ``Output`` serializer is named after the view: ``DutyApi.Input`` -> ``Duty``."""
        name = super().get_serializer_name(serializer, direction)
        qualname = type(serializer).__qualname__
        if "." in qualname and name in {"Input", "Output"}:
            owner = qualname.rsplit(".", 1)[0].removesuffix("Api")
            return owner if name == "Input" else f"{owner}Output"
        return name

    def _error_statuses(self) -> list[int]:
        view: Any = self.view
        statuses = {429, *getattr(view, "error_statuses", ())}
        if self.method in {"POST", "PUT", "PATCH"}:
            statuses |= {400, 415}
        if not any(isinstance(p, AllowAny) for p in view.get_permissions()):
            statuses |= {401, 403}
        if "{" in self.path:
            statuses.add(404)
        if self.method == "POST" and getattr(view, "idempotent_post", False):
            statuses.add(409)
        return sorted(statuses)

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.method == "POST" and getattr(self.view, "idempotent_post", False):
            parameters.append(IDEMPOTENCY_KEY)
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
