"""WebSocket routes: the one live-events endpoint (docs/websocket.md)."""

from django.urls import path

from bpmos.events.consumers import EventConsumer

websocket_urlpatterns = [
    path("ws/events/", EventConsumer.as_asgi()),
]
