"""The dispatcher dashboard and the public tracking page (server-rendered; websockets carry the changes)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
