"""The cached read models of the plant screens (``bpmos.readcache``).

``LINE_STATUS``: every line's status and the plant summary (``/api/lines``,
``/api/live-status/lines``, ``/api/live-status/summary``). They are computed
from lines, stations, machines, the OEE snapshots and the runbook a line names;
a machine's status change in ``services`` is a raw write and says so itself.

``OPERATIONS``: running versus blocked work-order stages and WIP by stage
(``/api/live-status/operations``, ``/api/live-status/bottlenecks``), computed
from runbooks, their stages, work orders and work-order stages.

``ROLLUPS``: the OEE and line-yield trends (``/api/dashboard/trends``),
computed from the machines' hour and day roll-ups and the lines and machines
they belong to. Beat writes the roll-ups in bulk; every such write goes
through ``services.machine_days_write``, which says so itself.
"""

from bpmos.readcache import ReadModel

LINE_STATUS = ReadModel(
    "line-status",
    [
        "lines.Line",
        "lines.Station",
        "lines.Machine",
        "lines.OEESnapshot",
        "runbooks.Runbook",
    ],
)
OPERATIONS = ReadModel(
    "operations",
    [
        "runbooks.Runbook",
        "runbooks.Stage",
        "runbooks.WorkOrder",
        "runbooks.WorkOrderStage",
    ],
)
ROLLUPS = ReadModel(
    "line-rollups",
    [
        "lines.Line",
        "lines.Station",
        "lines.Machine",
        "lines.MachineHour",
        "lines.MachineDay",
    ],
)
