"""ASGI entry point: websockets through Channels (and HTTP, so one server can serve a whole origin)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models (consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin is checked per route (dispatch.routing): the rider's app sends none.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
