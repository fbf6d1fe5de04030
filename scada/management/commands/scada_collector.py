"""Run the SCADA collector until SIGTERM or Ctrl-C: a session to every enabled
OPC UA connector, subscriptions and polls, reconnection with backoff
(``scada.collector``; docs/scada.md, "The collector process")::

    python manage.py scada_collector

Run one per plant network (honcho's Procfile in the embedded mode, a systemd
unit in production).
"""

import asyncio
import contextlib
import logging
import signal

from django.core.management.base import BaseCommand

from scada.collector import Collector


class Command(BaseCommand):
    help = "Collect OPC UA readings of every enabled connector (Ctrl-C stops)."

    def handle(self, *args, **options):
        # asyncua logs every request at INFO: thousands of lines a minute.
        logging.getLogger("asyncua").setLevel(logging.WARNING)
        self.stdout.write("SCADA collector: watching the enabled OPC UA connectors")
        self.stdout.flush()
        asyncio.run(self._collect())

    async def _collect(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(signum, stop.set)
        await Collector().run(stop)
