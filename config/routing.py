"""Websocket routes of every app, gathered in one list for the ASGI application."""

from django.urls import URLPattern, URLResolver

from dispatch.routing import websocket_urlpatterns as dispatch_websockets

websocket_urlpatterns: list[URLPattern | URLResolver] = [*dispatch_websockets]
