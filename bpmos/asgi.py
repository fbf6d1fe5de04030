"""ASGI entry point under daphne: WebSockets and the dispatch desk's SSE stream
(both modes), and the rest of HTTP in the embedded mode."""

import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
django_asgi_app = (
    get_asgi_application()
)  # loads the app registry before consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from bpmos.events.routing import websocket_urlpatterns  # noqa: E402
from passports.dispatch.api.stream import DispatchStreamConsumer  # noqa: E402

# GET of the stream is a long-lived response that Django's request cycle cannot
# hold; every other method on that path goes to Django (405, OPTIONS, HEAD).
_SSE_ROUTES = [
    (re.compile(r"^/api/live-products/dispatchable/stream/?$"), DispatchStreamConsumer),
]
_sse_apps = {pattern: consumer.as_asgi() for pattern, consumer in _SSE_ROUTES}


async def http_application(scope, receive, send):
    """Send GETs of a server-sent-events path to its consumer, the rest to Django."""
    if scope["method"] == "GET":
        for pattern, app in _sse_apps.items():
            if pattern.match(scope["path"]):
                return await app(scope, receive, send)
    return await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
