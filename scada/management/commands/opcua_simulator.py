"""Serve the demo plant's OPC UA server until SIGTERM or Ctrl-C (``make run``
starts it from the Procfile; docs/scada.md)::

    python manage.py opcua_simulator
    python manage.py opcua_simulator --endpoint opc.tcp://0.0.0.0:4841/bpmos/
"""

import asyncio
import contextlib
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scada.simulator import PlantSimulator


class Command(BaseCommand):
    help = "Serve the demo plant's OPC UA simulator (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", default=settings.BPMOS_OPCUA_SIM_URL)
        parser.add_argument(
            "--tick",
            type=float,
            default=1.0,
            help="Seconds between the plant's ticks (default 1; smaller runs faster).",
        )

    def handle(self, *args, **options):
        # asyncua logs every request at INFO: thousands of lines a minute.
        logging.getLogger("asyncua").setLevel(logging.WARNING)
        if not options["tick"] > 0:
            raise CommandError("--tick: a number of seconds above 0, e.g. 0.5.")
        self.stdout.write(f"OPC UA plant simulator at {options['endpoint']}")
        self.stdout.flush()
        asyncio.run(self._serve(options["endpoint"], options["tick"]))

    async def _serve(self, endpoint: str, tick_s: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(signum, stop.set)
        await PlantSimulator(endpoint=endpoint, tick_s=tick_s).run(stop)
