"""Paise to the two-place decimal text of the API, the statement and admin forms, and back; exact, no float.

(``config.money.format_minor`` is the display form with the currency and thousands separators.)
"""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"\s*(\d{1,10})(?:\.(\d{1,2}))?\s*")


def paise_text(amount_paise: int) -> str:
    """``-123456`` -> ``"-1234.56"``."""
    sign = "-" if amount_paise < 0 else ""
    major, minor = divmod(abs(amount_paise), 100)
    return f"{sign}{major}.{minor:02d}"


def paise_parse(text: str) -> int | None:
    """``"1234.5"`` -> ``123450``; None unless ``text`` is digits with at most two decimal places (no sign)."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
