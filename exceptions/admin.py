"""Exceptions in the Django admin: browse and filter; acknowledge and resolve
through the services.

Status, escalation and resolution fields are read-only here: they change only
through ``exceptions.services`` (the actions below), which check the transition,
audit and publish. Raising an exception is the API's and the mobile app's job
(it needs a stage or a runbook and starts the escalation clock), so the admin
adds none and deletes none. Title and description stay editable for admins, as
audited plain edits.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from bpmos import access
from bpmos.adminkit import AuditedModelAdmin
from bpmos.roles import Role
from exceptions import services
from exceptions.models import PlantException


class ResolveActionForm(ActionForm):
    """The action bar with a box for the note the *Resolve* action needs."""

    resolution_note = forms.CharField(
        required=False,
        label="Resolution note",
        widget=forms.TextInput(attrs={"size": 50}),
        help_text="Required by Resolve.",
    )


def _role(request) -> str | None:
    return getattr(request.user, "role", None)


@admin.register(PlantException)
class PlantExceptionAdmin(AuditedModelAdmin):
    """Auditors and admins read; acknowledge and resolve follow the API's roles."""

    list_display = [
        "code_display",
        "title",
        "type",
        "severity",
        "status",
        "is_blocking",
        "runbook",
        "stage",
        "escalation_level",
        "raised_at",
    ]
    list_display_links = ["code_display", "title"]
    list_filter = ["status", "severity", "type", "source", "is_blocking", "runbook"]
    list_select_related = ["runbook", "stage"]
    search_fields = ["title", "description"]
    date_hierarchy = "raised_at"
    ordering = ["-raised_at", "-id"]
    action_form = ResolveActionForm
    actions = ["acknowledge", "resolve"]
    fieldsets = [
        (None, {"fields": ["title", "description"]}),
        (
            "What and where",
            {
                "fields": [
                    "type",
                    "severity",
                    "is_blocking",
                    "source",
                    "runbook",
                    "stage",
                    "work_order",
                    "work_order_stage",
                    "raised_by",
                    "raised_at",
                ]
            },
        ),
        (
            "Escalation and resolution",
            {
                "fields": [
                    "status",
                    "escalation_level",
                    "ack_due_at",
                    "escalation_log",
                    "acknowledged_by",
                    "acknowledged_at",
                    "resolved_by",
                    "resolved_at",
                    "resolution_note",
                ]
            },
        ),
    ]
    readonly_fields = [
        name
        for _, section in fieldsets
        for name in section["fields"]
        if name not in {"title", "description"}
    ]

    @admin.display(description="Id", ordering="id")
    def code_display(self, obj: PlantException) -> str:
        return obj.code

    # --- who sees and does what ----------------------------------------------------

    def _is_reader(self, request) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and _role(request))

    def has_module_permission(self, request) -> bool:
        return self._is_reader(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._is_reader(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return _role(request) == Role.ADMIN

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_acknowledge_permission(self, request) -> bool:
        return _role(request) in access.SHOP_FLOOR

    def has_resolve_permission(self, request) -> bool:
        return _role(request) in access.SUPERVISORS

    # --- actions: the services, one exception at a time ----------------------------

    action_noun = "exception"

    def action_label(self, obj) -> str:
        return obj.code

    def _each(self, request, queryset, verb: str, call) -> None:
        self.apply_each(request, queryset.order_by("id"), verb, call)

    @admin.action(
        description="Acknowledge selected exceptions", permissions=["acknowledge"]
    )
    def acknowledge(self, request, queryset):
        self._each(
            request,
            queryset,
            "Acknowledged",
            lambda exc: services.exception_acknowledge(
                exception_id=exc.pk, actor=request.user
            ),
        )

    @admin.action(
        description="Resolve selected exceptions (with the note typed beside)",
        permissions=["resolve"],
    )
    def resolve(self, request, queryset):
        note = (request.POST.get("resolution_note") or "").strip()
        if not note:
            self.message_user(
                request,
                "Type a resolution note beside the action menu; nothing was resolved.",
                messages.ERROR,
            )
            return
        self._each(
            request,
            queryset,
            "Resolved",
            lambda exc: services.exception_resolve(
                exception_id=exc.pk, resolution_note=note, actor=request.user
            ),
        )
