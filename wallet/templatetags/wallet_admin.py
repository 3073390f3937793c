"""Template filters of the wallet's admin pages."""

from __future__ import annotations

from django import template

from config.money import format_minor

register = template.Library()


@register.filter
def money(amount_paise: int | None) -> str:
    """Paise as ``INR 1,234.56``; "—" for none."""
    return "—" if amount_paise is None else format_minor(int(amount_paise))
