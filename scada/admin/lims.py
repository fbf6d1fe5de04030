"""Admin of SCADA lims: the quality results applied, read-only (a result
changes only by being applied once, through ``scada.quality``)."""

from django.contrib import admin

from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from scada.models import LimsResult


@admin.register(LimsResult)
class LimsResultAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    list_display = (
        "tested_at",
        "serial",
        "test_name",
        "passed",
        "passport_event_id",
        "source",
        "connector",
        "key",
    )
    list_filter = ("passed", "source", "connector")
    search_fields = ("serial", "test_name", "key")
    date_hierarchy = "tested_at"
    list_select_related = ("connector",)
    readonly_fields = (
        "key",
        "connector",
        "serial",
        "test_name",
        "passed",
        "values",
        "tested_at",
        "passport_event_id",
        "source",
        "created_at",
    )
