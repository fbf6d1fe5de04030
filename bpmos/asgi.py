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
from daphne import http_protocol  # noqa: E402

from bpmos.events.routing import websocket_urlpatterns  # noqa: E402
from passports.dispatch.api.stream import DispatchStreamConsumer  # noqa: E402

# GET of the stream is a long-lived response that Django's request cycle cannot
# hold; every other method on that path goes to Django (405, OPTIONS, HEAD).
_SSE_ROUTES = [
    (re.compile(r"^/api/live-products/dispatchable/stream/?$"), DispatchStreamConsumer),
]
_sse_apps = {pattern: consumer.as_asgi() for pattern, consumer in _SSE_ROUTES}


class _RawBodyWebRequest(http_protocol.WebRequest):
    """Daphne's request without Twisted's form parsing.

    Twisted parses a multipart or urlencoded POST body into ``request.args``,
    which daphne never reads, and answers a multipart body it cannot parse
    (``--boundary--`` alone) with a bare, empty 400 before the request reaches
    Django: no envelope, no request id. Without the parsing the body goes to
    Django as it came, where the parser's 400 is in the envelope (and a large
    upload is not parsed twice)."""

    def __init__(self, *args, **kwargs):
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)


# HTTPFactory.buildProtocol reads the module's WebRequest for each connection.
http_protocol.WebRequest = _RawBodyWebRequest


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
