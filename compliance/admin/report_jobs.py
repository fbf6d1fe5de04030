"""Admin of compliance's report jobs area: the jobs, read-only (the API asks
for them; the worker and the prune write them)."""

from django.contrib import admin

from bpmos.adminkit import AdminReaderMixin, ReadOnlyAdminMixin
from compliance.models import ReportJob


@admin.register(ReportJob)
class ReportJobAdmin(ReadOnlyAdminMixin, AdminReaderMixin, admin.ModelAdmin):
    """Who asked for which report, how far it got, and why it failed."""

    list_display = [
        "id",
        "report_id",
        "format",
        "status",
        "progress",
        "rows_done",
        "rows_total",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "format", "report_id"]
    search_fields = ["id", "report_id", "created_by__username", "error"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    readonly_fields = [
        "id",
        "report_id",
        "params",
        "format",
        "status",
        "progress",
        "rows_done",
        "rows_total",
        "file_name",
        "file_path",
        "content_type",
        "size",
        "checksum",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
