"""The fan-out ceiling for ``bench.fanout``: plain Channels, nothing of ours.

A WebSocket consumer that joins one group when it connects and forwards the
pre-encoded text of every group message; no authentication, no topics, no
de-duplication. Served by daphne on the same Redis channel layer as
``bpmos.asgi``:

    daphne bench.fanout_ceiling:application
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

GROUP = "bench.fanout"


class CeilingConsumer(AsyncWebsocketConsumer):
    """Joins ``GROUP`` on connect (before accepting) and forwards its messages."""

    groups = [GROUP]

    async def bench_message(self, message: dict) -> None:
        await self.send(text_data=message["text"])


application = CeilingConsumer.as_asgi()
