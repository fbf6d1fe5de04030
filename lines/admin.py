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
from bpmos.adminlarge import LargeTableAdmin, listed_values
from lines.models import (
    Line,
    Machine,
    MachineReading,
    OEESnapshot,
    ReadingTag,
    Station,
)


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
class MachineReadingAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """Millions of rows (bpmos.adminlarge): the newest stored first (the
    primary key's index, read backwards in each month's partition; one
    machine's by tag), an
    estimated count, the tags BPM-OS computes with offered as filters (any
    other tag filters by URL: ``?tag=...``), no sorting by a column (each
    would sort the whole table)."""

    list_display = ["machine", "tag", "ts", "value", "text", "unit", "quality"]
    list_filter = [
        "machine",
        ("tag", listed_values(ReadingTag.values)),
        "quality",
    ]
    ordering = ["-id"]
    sortable_by = ()
    list_select_related = ["machine"]
    raw_id_fields = ["machine"]

    def get_ordering(self, request):
        """One machine's readings: its tags' newest first, in the order of the
        (machine, tag, ts) index read backwards (its rows need not be among
        the newest stored)."""
        if "machine__id__exact" in request.GET:
            return ["-tag", "-ts"]
        return super().get_ordering(request)


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
    list_select_related = ["line", "station__line"]
