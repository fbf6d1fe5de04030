"""The audit log in the Django admin: read-only, for auditors and admins."""

from django.contrib import admin

from bpmos.adminkit import AdminReaderMixin, ReadOnlyAdminMixin
from elog.models import AuditRecord, ShiftLogEntry


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdminMixin, AdminReaderMixin, admin.ModelAdmin):
    """Browse and filter the log; nobody adds, changes or deletes a record.

    Visibility follows the plant role rather than Django model permissions:
    auditors are staff but not superusers and hold no permission rows.
    """

    list_display = [
        "seq",
        "occurred_at",
        "actor_username",
        "actor_role",
        "action",
        "target_type",
        "target_repr",
        "source",
        "client_address",
        "request_id",
    ]
    list_display_links = ["seq"]
    list_filter = ["action", "actor_role", "target_type", "source"]
    date_hierarchy = "occurred_at"
    search_fields = ["action", "actor_username", "target_repr", "request_id"]
    ordering = ["-seq"]
    actions = None
    # Counting a long log on every page costs more than it tells.
    show_full_result_count = False


@admin.register(ShiftLogEntry)
class ShiftLogEntryAdmin(ReadOnlyAdminMixin, AdminReaderMixin, admin.ModelAdmin):
    """Browse the shift log; entries are immutable (written through the API and
    the services, never here)."""

    list_display = [
        "id",
        "created_at",
        "entry_type",
        "operator_name",
        "line",
        "shift_start",
        "automatic",
    ]
    list_filter = ["entry_type", "automatic", "line"]
    search_fields = ["body", "operator_name"]
    date_hierarchy = "created_at"
