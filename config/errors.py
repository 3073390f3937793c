"""The domain's error types. Services raise these; the API maps them to HTTP in one place
(``config/api/errors.py``). ``code`` is stable and machine-readable; ``message`` is for people."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(DomainError):
    """The request is wrong in a way that is not about one field's format (HTTP 400)."""

    code = "bad_request"


class Conflict(DomainError):
    """The request conflicts with the current state (HTTP 409)."""

    code = "conflict"


class NotFound(DomainError):
    """The thing does not exist, or is not the caller's to see (HTTP 404)."""

    code = "not_found"


class PayloadTooLarge(DomainError):
    """The upload or batch is larger than allowed (HTTP 413)."""

    code = "payload_too_large"


class UnsupportedFile(DomainError):
    """The uploaded file is not of an accepted type (HTTP 415)."""

    code = "unsupported_file_type"


class RuleViolation(DomainError):
    """A business rule refused a well-formed request (HTTP 422)."""

    code = "rule_violation"
