"""Money is integer minor units (paise) inside; these helpers are the only place it becomes text."""

from __future__ import annotations

from django.conf import settings


def format_minor(amount_minor: int) -> str:
    """``-123456`` -> ``"INR -1,234.56"``: exact, no float on the way."""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    return f"{settings.CURRENCY} {sign}{major:,}.{minor:02d}"
