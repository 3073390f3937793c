"""Cursor pagination for every list: stable under inserts, no COUNT(*), opaque cursors."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering: str | tuple[str, ...] = "-id"

    def decode_cursor(self, request: Request) -> Any:
        """A damaged cursor is bad input (400 on ``cursor``), not a missing page (DRF answers 404)."""
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError({self.cursor_query_param: ["This cursor is invalid or expired."]}) from exc
