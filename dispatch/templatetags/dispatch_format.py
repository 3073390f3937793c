"""Formats the dashboard's numbers the way its script does (``static/dispatch/dashboard.js``), so the first
render and a re-render read the same."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration_s(seconds: int | None) -> str:
    """``42 s``, ``7 min``, ``3 h 05 min``; an em dash for None."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@register.filter
def minutes_hm(minutes: int | None) -> str:
    """Hours-of-service minutes as ``5 h 20 min``."""
    if minutes is None:
        return "—"
    return "0 min" if minutes <= 0 else duration_s(int(minutes) * 60)


@register.filter
def paise(amount: int | None) -> str:
    """``1,234.50`` from paise."""
    return f"{(amount or 0) / 100:,.2f}"
