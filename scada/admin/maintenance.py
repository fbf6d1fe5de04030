"""Maintenance work orders in the Django admin: their delivery state and the
delivery log, read-only; *Retry delivery* sends selected ones again through
``scada.maintenance.work_order_retry`` (audited, as from the API); *Mark
closed* closes them (``work_order_close``) when the CMMS cannot report it.

Work orders are opened through the API or by an escalated alarm, never typed
in here, and their delivery fields change only through the services.
"""

from django.contrib import admin

from bpmos import access
from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    is_admin_reader,
)
from scada import maintenance
from scada.models import DeliveryAttempt, MaintenanceWorkOrder


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["at", "ok", "status_code", "duration_ms", "error"]
    readonly_fields = fields
    ordering = ["at", "id"]
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None) -> bool:
        # Auditors hold no model permissions: visibility follows the role.
        return is_admin_reader(request)


@admin.register(MaintenanceWorkOrder)
class MaintenanceWorkOrderAdmin(
    ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin
):
    """Auditors and admins read; supervisors and above (here: admins) retry."""

    list_display = [
        "code_display",
        "asset_name",
        "priority",
        "delivery_state",
        "attempts",
        "external_id",
        "next_attempt_at",
        "source_alarm",
        "created_at",
    ]
    list_display_links = ["code_display", "asset_name"]
    list_filter = ["delivery_state", "priority", "connector"]
    list_select_related = ["source_alarm", "connector"]
    search_fields = ["asset_id", "asset_name", "description", "external_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    inlines = [DeliveryAttemptInline]
    actions = ["retry", "close"]
    fieldsets = [
        (
            "Work order (the contract's normalized schema)",
            {
                "fields": [
                    "asset_id",
                    "asset_name",
                    "description",
                    "priority",
                    "source_alarm",
                    "created_by_system",
                    "assignee",
                    "scada_snapshot",
                    "created_by",
                    "created_at",
                ]
            },
        ),
        (
            "Delivery to the CMMS",
            {
                "fields": [
                    "connector",
                    "delivery_state",
                    "attempts",
                    "external_id",
                    "last_error",
                    "next_attempt_at",
                    "sent_at",
                    "closed_at",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, section in fieldsets for name in section["fields"]]

    @admin.display(description="Id", ordering="id")
    def code_display(self, obj: MaintenanceWorkOrder) -> str:
        return f"MWO-{obj.pk}"

    def has_retry_permission(self, request) -> bool:
        return getattr(request.user, "role", None) in access.SUPERVISORS

    def has_close_permission(self, request) -> bool:
        return getattr(request.user, "role", None) in access.SUPERVISORS

    action_noun = "work order"

    def action_label(self, obj) -> str:
        return f"MWO-{obj.pk}"

    @admin.action(description="Retry delivery to the CMMS", permissions=["retry"])
    def retry(self, request, queryset):
        self.apply_each(
            request,
            queryset.order_by("id"),
            "Queued",
            lambda work_order: maintenance.work_order_retry(
                work_order_id=work_order.pk, actor=request.user
            ),
        )

    @admin.action(
        description="Mark closed (done in the CMMS; the alarm may open another)",
        permissions=["close"],
    )
    def close(self, request, queryset):
        self.apply_each(
            request,
            queryset.order_by("id"),
            "Closed",
            lambda work_order: maintenance.work_order_close(
                work_order_id=work_order.pk,
                actor=request.user,
                note="Closed in the admin.",
            ),
        )
