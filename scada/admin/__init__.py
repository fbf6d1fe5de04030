"""SCADA's admin, one module per area (Django imports ``scada.admin``)."""

from scada.admin import alarms, connectors, lims, maintenance  # noqa: F401
