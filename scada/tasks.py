"""SCADA's Celery tasks (Celery's autodiscovery imports this module): one
module per area, each named in bpmos/celery.py's beat schedule."""

from scada import (  # noqa: F401
    tasks_alarms,
    tasks_collector,
    tasks_lims,
    tasks_maintenance,
)
