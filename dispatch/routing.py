"""Websocket routes of the dispatch app (gathered in ``config.routing``).

Only the dashboard, authenticated by the staff session cookie, checks the Origin header (a cookie is sent by
any page that opens a socket to us); the rider's app sends no Origin, and the driver and tracking sockets are
authenticated by a token the page or app must know.
"""

from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import URLPattern, URLResolver, path

from dispatch.auth import DriverTokenAuthMiddleware
from dispatch.consumers import DispatchConsumer, DriverConsumer, TrackConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/dispatch/<str:city>/", AllowedHostsOriginValidator(DispatchConsumer.as_asgi())),
    path("ws/driver/", DriverTokenAuthMiddleware(DriverConsumer.as_asgi())),
    path("ws/orders/<int:order_id>/track/", TrackConsumer.as_asgi()),
]
