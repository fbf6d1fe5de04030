"""ASGI entry point: HTTP (embedded mode) and WebSockets (both modes) under daphne."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
django_asgi_app = (
    get_asgi_application()
)  # loads the app registry before consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from bpmos.events.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
