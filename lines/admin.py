"""Lines, stations and machines in the Django admin.

Admins edit the plant's layout (lines, their shift pattern, stations, machines);
every edit lands in the audit log. What has rules goes through the services:
a machine's status follows its state readings only (read-only here), readings
arrive only through ``readings_ingest`` (the admin lists them read-only), and
OEE snapshots are Celery beat's (read-only). Auditors browse everything
read-only.
"""

from django.contrib import admin

from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from lines.models import Line, Machine, MachineReading, OEESnapshot, Station


class PlantAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Admins write (they are superusers); auditors read."""


class ReadOnlyAdmin(ReadOnlyAdminMixin, PlantAdmin):
    """Rows only services write: listed, never added, changed or deleted here."""


@admin.register(Line)
class LineAdmin(PlantAdmin):
    list_display = ["slug", "name", "runbook", "shift_start", "shift_minutes"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]


@admin.register(Station)
class StationAdmin(PlantAdmin):
    list_display = ["line", "position", "slug", "name", "ideal_cycle_seconds"]
    list_filter = ["line"]
    search_fields = ["slug", "name"]


@admin.register(Machine)
class MachineAdmin(PlantAdmin):
    list_display = ["code", "name", "station", "machine_type", "status"]
    list_filter = ["status", "station__line"]
    search_fields = ["code", "name", "machine_type"]
    readonly_fields = ["status", "status_reason", "status_since"]


@admin.register(MachineReading)
class MachineReadingAdmin(ReadOnlyAdmin):
    list_display = ["machine", "tag", "ts", "value", "text", "unit", "quality"]
    list_filter = ["tag", "quality"]
    # No COUNT(*) over millions of readings on every page.
    show_full_result_count = False
    list_select_related = ["machine"]
    raw_id_fields = ["machine"]


@admin.register(OEESnapshot)
class OEESnapshotAdmin(ReadOnlyAdmin):
    list_display = [
        "line",
        "station",
        "window_start",
        "window_end",
        "availability",
        "performance",
        "quality",
        "oee",
    ]
    list_filter = ["line"]
