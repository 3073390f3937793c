"""The domain's error type. Services raise these; the API maps them to HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation. ``code`` is stable and machine-readable."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Conflict(DomainError):
    """The request conflicts with the current state (HTTP 409)."""

    code = "conflict"


class RuleViolation(DomainError):
    """A business rule refused a well-formed request (HTTP 422)."""

    code = "rule_violation"
