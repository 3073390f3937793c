"""One error shape for every API response that is not a success.

``{"error": {"code": "<snake_case>", "message": "<sentence>", "fields": {"<field>": ["..."]}}}``
DRF's own exceptions, Django's, and our domain errors all pass through ``exception_handler``; the
JSON 404/500 handlers cover what never reaches a DRF view. PostgreSQL out of reach (down, restarting, no pooled
connection in time) is a 503 ``database_unavailable`` with ``Retry-After``, from an API view or from anywhere
else (handler500 answers it for pages and middleware too), never a 500 or a traceback.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from config.errors import (
    DATABASE_RETRY_AFTER_S,
    BadRequest,
    Conflict,
    DomainError,
    NotFound,
    PayloadTooLarge,
    RuleViolation,
    UnsupportedFile,
    database_unavailable,
)

logger = logging.getLogger("fleetops.api")

_DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (BadRequest, status.HTTP_400_BAD_REQUEST),
    (Conflict, status.HTTP_409_CONFLICT),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (PayloadTooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (UnsupportedFile, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE),
    (RuleViolation, status.HTTP_422_UNPROCESSABLE_ENTITY),
)

_DRF_CODES: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.ParseError: ("malformed_request", "The request body could not be parsed."),
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    exceptions.AuthenticationFailed: ("authentication_failed", "The token is invalid or its user is inactive."),
    exceptions.PermissionDenied: ("permission_denied", "You are not allowed to do this."),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", "This method is not allowed here."),
    exceptions.NotAcceptable: ("not_acceptable", "This API answers in JSON only."),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Send the body as application/json."),
    exceptions.Throttled: ("rate_limited", "Too many requests; retry later."),
}


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _plain(detail: Any) -> Any:
    """ErrorDetail trees to plain JSON: lists of strings per field, nested where the input nests."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_plain(v) for v in detail]
    return str(detail)


def _validation(exc: exceptions.ValidationError) -> Response:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = _plain(detail)
        non_field = fields.pop(api_settings.NON_FIELD_ERRORS_KEY, None)
        message = non_field[0] if non_field else "Some fields are missing or invalid."
    else:
        fields = {}
        messages = _plain(detail)
        message = messages[0] if isinstance(messages, list) and messages else str(messages)
    # Field errors share one code (the per-field messages say what is wrong with each), so a client never
    # switches on whichever field DRF happened to list first; an error about the whole body keeps its own code.
    code = "invalid_input" if fields else _first_code(exc.get_codes(), default="invalid_input")
    if code in {"invalid", "required", "null", "blank"}:
        code = "invalid_input"
    return Response(error_body(code, message, fields), status=status.HTTP_400_BAD_REQUEST)


def _first_code(codes: Any, *, default: str) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        for value in codes.values():
            return _first_code(value, default=default)
    if isinstance(codes, list) and codes:
        return _first_code(codes[0], default=default)
    return default


_UNAVAILABLE_MESSAGE = "The database is unavailable; retry shortly."


def _database_unavailable(exc: Exception) -> Response:
    # One line, no traceback: during an outage every request says the same thing.
    logger.warning("database unavailable, answering 503: %s: %s", type(exc).__name__, str(exc).strip()[:300])
    response = Response(error_body("database_unavailable", _UNAVAILABLE_MESSAGE), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error the API raises becomes the one shape with the right status."""
    if database_unavailable(exc):
        return _database_unavailable(exc)
    if isinstance(exc, DomainError):
        for kind, http_status in _DOMAIN_STATUS:
            if isinstance(exc, kind):
                return Response(error_body(exc.code, exc.message), status=http_status)
        return Response(error_body(exc.code, exc.message), status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
        return Response(
            error_body("payload_too_large", "The request body is too large or has too many fields or files."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, SuspiciousOperation):  # left alone, Django would answer with an HTML page
        return Response(error_body("bad_request", "The request is malformed."), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        return _validation(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django logs it and handler500 answers in the shape

    code, message = _DRF_CODES.get(type(exc), (str(exc.default_code), str(exc.default_detail)))
    if isinstance(exc.detail, str) and exc.detail and type(exc) not in {exceptions.ParseError, exceptions.Throttled}:
        message = str(exc.detail)
    if isinstance(exc, exceptions.ParseError):
        if _is_json(context.get("request")):
            code, message = "malformed_json", f"The body is not valid JSON: {exc.detail}"
        else:
            code, message = "malformed_request", f"The body could not be parsed: {exc.detail}"
    response = Response(error_body(code, message), status=exc.status_code)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    return response


def _is_json(request: Any) -> bool:
    media_type = str(getattr(request, "content_type", "") or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404: JSON in the error shape under /api/, Django's page elsewhere."""
    if not _is_api(request):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)  # type: ignore[return-value]
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def json_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the error shape under /api/ (the traceback goes to the log, never to the client).

    Django calls it inside its ``except`` block, so the error is at hand: PostgreSQL out of reach, raised by a
    page or by a middleware (the session's user is loaded there), is a 503 with ``Retry-After`` instead."""
    error = sys.exc_info()[1]
    if error is not None and database_unavailable(error):
        if _is_api(request):
            response: HttpResponse = JsonResponse(error_body("database_unavailable", _UNAVAILABLE_MESSAGE), status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    if not _is_api(request):
        from django.views.defaults import server_error

        return server_error(request)
    return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."), status=500)
