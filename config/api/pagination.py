"""Cursor pagination for every list: stable under inserts, no COUNT(*), opaque cursors."""

from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"
