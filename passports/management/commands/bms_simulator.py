"""Run simulated BMS nodes on a CAN bus until interrupted.

The embedded mode needs no such process: on python-can's ``virtual`` interface
the web process starts its own simulator (``BPMOS_BMS_SIMULATOR``), because
virtual buses only connect within one process. This command is for a bus that
crosses processes or machines: ``socketcan`` on a ``vcan0`` device, or
python-can's ``udp_multicast`` interface, so the web process provisions a BMS
that lives elsewhere, as it will on the line::

    python manage.py bms_simulator --interface socketcan --channel vcan0 --node 1
    python manage.py bms_simulator --behaviour refuse --refuse-with 0x33
"""

import threading

import can
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from passports.bms.protocol import Nrc, ProtocolError
from passports.bms.simulator import Behaviour, SimulatedBMS


def _nrc(value: str) -> int:
    try:
        code = int(value, 0)
    except ValueError as exc:
        raise CommandError(f"--refuse-with: {value!r} is not a number.") from exc
    if not 0 < code < 0x100:
        raise CommandError("--refuse-with: a byte, e.g. 0x22.")
    return code


class Command(BaseCommand):
    help = "Run simulated BMS nodes on the configured CAN bus (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--interface", default=settings.BPMOS_CAN_INTERFACE)
        parser.add_argument("--channel", default=settings.BPMOS_CAN_CHANNEL)
        parser.add_argument("--bitrate", type=int, default=settings.BPMOS_CAN_BITRATE)
        parser.add_argument(
            "--node",
            type=int,
            action="append",
            dest="nodes",
            help="Node id to answer as (repeat for several; default "
            "BPMOS_BMS_DEFAULT_NODE).",
        )
        parser.add_argument(
            "--behaviour", choices=[b.value for b in Behaviour], default="ok"
        )
        parser.add_argument(
            "--refuse-with",
            type=_nrc,
            default=int(Nrc.CONDITIONS_NOT_CORRECT),
            help="NRC a refusing BMS answers (default 0x22).",
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=0,
            help="Seconds to run (0: until interrupted).",
        )

    def handle(self, *args, **options):
        nodes = options["nodes"] or [settings.BPMOS_BMS_DEFAULT_NODE]
        simulators = []
        try:
            for node in nodes:
                simulator = SimulatedBMS(
                    node=node,
                    channel=options["channel"],
                    interface=options["interface"],
                    bitrate=options["bitrate"] or None,
                    behaviour=options["behaviour"],
                    refuse_with=options["refuse_with"],
                    timeout_s=settings.BPMOS_BMS_TIMEOUT_S,
                )
                simulators.append(simulator.start())
        except (ProtocolError, can.CanError, OSError, ValueError) as exc:
            for simulator in simulators:
                simulator.stop()
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Simulated BMS ({options['behaviour']}) at node(s) "
            f"{', '.join(map(str, nodes))} on {options['interface']}:"
            f"{options['channel']}"
        )
        if options["interface"] == "virtual":
            self.stdout.write(
                "Note: a virtual bus reaches only this process; use socketcan "
                "(vcan0) or udp_multicast to reach the web process."
            )
        try:
            threading.Event().wait(options["duration"] or None)
        except KeyboardInterrupt:
            pass
        finally:
            for simulator in simulators:
                simulator.stop()
                self.stdout.write(
                    f"Node {simulator.node}: {simulator.frames_seen} frames seen."
                )
