"""WebSocket routes: the one live-events endpoint (docs/websocket.md)."""

from django.urls import re_path

from bpmos.events.consumers import EventConsumer

websocket_urlpatterns = [
    re_path(r"^ws/events/?$", EventConsumer.as_asgi()),
]
