"""The audit log in the Django admin: read-only, for auditors and admins, with
a "Verify the chain" button that walks the hash chain
(``elog.services.audit_chain_verify``, as ``GET /api/audit/verify``) and says
how many records it verified or where the chain first breaks."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from bpmos.adminkit import AdminReaderMixin, ReadOnlyAdminMixin
from bpmos.adminlarge import IndexedValuesFilter, LargeTableAdmin, listed_values
from bpmos.context import SOURCES
from bpmos.roles import Role
from elog import services
from elog.models import AuditRecord, ShiftLogEntry


def chain_message(result: services.VerifyResult) -> tuple[int, str]:
    """The level and text of the message a verification leaves on the page."""
    if result.ok:
        if not result.checked:
            return messages.SUCCESS, "The audit log is empty: nothing to verify."
        return messages.SUCCESS, (
            f"The audit chain is intact: {result.checked} records verified, "
            f"the newest #{result.head_seq}."
        )
    broken = result.first_broken
    where = f"record #{broken.seq}" + (f" (id {broken.id})" if broken.id else "")
    return messages.ERROR, (
        f"The audit chain is broken at {where}, {broken.problem}: "
        f"{broken.message} ({result.checked} records checked.)"
    )


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdminMixin, AdminReaderMixin, LargeTableAdmin):
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
    # A million records a plant-year (bpmos.adminlarge): values through the
    # indexes, or the values the code writes.
    list_filter = [
        ("action", IndexedValuesFilter),
        ("actor_role", listed_values(["", *Role.values])),
        ("target_type", IndexedValuesFilter),
        ("source", listed_values(SOURCES)),
    ]
    date_hierarchy = "occurred_at"
    search_fields = ["action", "actor_username", "target_repr", "request_id"]
    ordering = ["-seq"]
    actions = None

    def get_urls(self):
        verify = path(
            "verify/",
            self.admin_site.admin_view(self.verify_view),
            name="elog_auditrecord_verify",
        )
        return [verify, *super().get_urls()]

    def verify_view(self, request):
        """POST: walk the chain and leave the result on the list (a read: it
        changes nothing, so every reader may run it)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            level, text = chain_message(services.audit_chain_verify())
            self.message_user(request, text, level)
        return HttpResponseRedirect(reverse("admin:elog_auditrecord_changelist"))


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
