"""Runbooks, gates and work orders in the Django admin.

Admins edit the templates (runbooks, their stages, steps and gate definitions);
every edit, inline rows included, lands in the audit log. What has rules goes
through the services, never around them:

* a gate's status changes only through ``gate_set`` (actions open, close, and
  lock with a reason asked on an intermediate page); the status is read-only in
  every form, and a gate that is not Open cannot be deleted;
* work orders are released through the API (``POST /api/workorders/``, which
  creates their stages from the runbook); the admin shows them read-only and can
  cancel them (``work_order_cancel``, with a reason);
* stage assignments are made through the API; the admin lists them and removes
  one through ``stage_unassign``.

Auditors (staff without model permissions) browse everything read-only.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.forms.models import model_to_dict
from django.template.response import TemplateResponse

from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    is_admin_reader,
)
from bpmos.errors import DomainError
from bpmos.roles import Role
from elog import audit
from runbooks import services
from runbooks.models import (
    Gate,
    GateStatus,
    Runbook,
    Stage,
    StageAssignment,
    Step,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)


def _is_admin(request) -> bool:
    return is_admin_reader(request) and request.user.role == Role.ADMIN


class PlantAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Admins write (Django's permissions: they are superusers); auditors read."""

    def save_formset(self, request, form, formset, change):
        """Save inline rows and audit each one created, changed or deleted."""
        # Read "before" from the database: the forms' instances already carry the
        # submitted values (validation writes them onto the instances).
        pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk]
        instances_before = {
            obj.pk: model_to_dict(obj)
            for obj in formset.model._default_manager.filter(pk__in=pks)
        }
        formset.save(commit=False)
        for obj in formset.deleted_objects:
            before = instances_before.get(obj.pk) or model_to_dict(obj)
            label, pk = obj._meta.label_lower, str(obj.pk)
            obj.delete()
            audit.record(
                actor=request.user,
                action=f"{label}.admin_deleted",
                target=None,
                target_type=label,
                target_id=pk,
                before=before,
            )
        for obj in formset.new_objects:
            obj.save()
            audit.record(
                actor=request.user,
                action=f"{obj._meta.label_lower}.admin_created",
                target=obj,
                after=model_to_dict(obj),
            )
        for obj, fields in formset.changed_objects:
            obj.save()
            old = instances_before.get(obj.pk, {})
            new = model_to_dict(obj, fields=fields)
            changed = [k for k in new if old.get(k) != new[k]]
            if changed:
                audit.record(
                    actor=request.user,
                    action=f"{obj._meta.label_lower}.admin_changed",
                    target=obj,
                    before={k: old.get(k) for k in changed},
                    after={k: new[k] for k in changed},
                )
        formset.save_m2m()


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Reason")


def _ask_reason(modeladmin, request, queryset, *, action: str, title: str, question):
    """The intermediate page of an action that needs a reason.

    Returns ``(reason, None)`` once a valid reason was posted, else
    ``(None, page)`` with the page to show.
    """
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return form.cleaned_data["reason"], None
    page = TemplateResponse(
        request,
        "admin/runbooks/reason_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "question": question,
            "queryset": queryset,
            "form": form,
            "opts": modeladmin.model._meta,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )
    return None, page


# --- templates: runbooks, stages, gates, steps ------------------------------------


class StageInline(admin.TabularInline):
    model = Stage
    fields = ["position", "code", "name", "slug", "standard_minutes"]
    ordering = ["position"]
    extra = 0
    show_change_link = True


@admin.register(Runbook)
class RunbookAdmin(PlantAdmin):
    list_display = [
        "slug",
        "title",
        "kind",
        "sequential",
        "is_default",
        "is_active",
        "updated_at",
    ]
    list_filter = ["kind", "sequential", "is_default", "is_active"]
    search_fields = ["slug", "title", "description"]
    inlines = [StageInline]


class GateInline(admin.TabularInline):
    """Gate definitions; their status changes only through the gate actions."""

    model = Gate
    fields = ["type", "condition", "status", "reason", "changed_by", "changed_at"]
    readonly_fields = ["status", "reason", "changed_by", "changed_at"]
    extra = 0
    can_delete = False  # removing an interlock is done, deliberately, on its page
    show_change_link = True


class StepInline(admin.TabularInline):
    model = Step
    fields = ["position", "instruction"]
    ordering = ["position"]
    extra = 0


@admin.register(Stage)
class StageAdmin(PlantAdmin):
    list_display = ["code", "name", "runbook", "position", "standard_minutes", "slug"]
    list_filter = ["runbook"]
    search_fields = ["code", "name", "slug"]
    list_select_related = ["runbook"]
    inlines = [GateInline, StepInline]


class GateActionForm(helpers.ActionForm):
    """The action bar with the password an unlock (opening or closing a
    locked gate: a gate override, a signed step) is signed with."""

    password = forms.CharField(
        required=False,
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"size": 20, "autocomplete": "off"}),
        help_text="Re-enter yours to sign the unlock of a locked gate.",
    )


@admin.register(Gate)
class GateAdmin(PlantAdmin):
    action_form = GateActionForm
    list_display = [
        "id",
        "stage",
        "type",
        "condition",
        "status",
        "reason",
        "changed_by",
        "changed_at",
    ]
    list_filter = ["status", "type", "stage__runbook"]
    search_fields = ["condition", "reason", "stage__code", "stage__name"]
    list_select_related = ["stage", "changed_by"]
    readonly_fields = ["status", "reason", "changed_by", "changed_at"]
    actions = ["open_gates", "close_gates", "lock_gates"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        # A bulk delete would remove locked interlocks unseen; delete one at a time.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != GateStatus.OPEN:
            return False  # a closed or locked gate is lifted (opened) first
        return super().has_delete_permission(request, obj)

    def _gate_set(self, request, queryset, action: str, reason: str = "") -> None:
        done = 0
        for gate in queryset:
            try:
                services.gate_set(
                    gate_id=gate.pk,
                    action=action,
                    reason=reason,
                    actor=request.user,
                    password=request.POST.get("password") or None,
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{gate}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} gate(s) set to {action}.")

    @admin.action(description="Open selected gates", permissions=["change"])
    def open_gates(self, request, queryset):
        self._gate_set(request, queryset, "open")

    @admin.action(description="Close selected gates", permissions=["change"])
    def close_gates(self, request, queryset):
        self._gate_set(request, queryset, "close")

    @admin.action(
        description="Lock selected gates (with a reason)", permissions=["change"]
    )
    def lock_gates(self, request, queryset):
        reason, page = _ask_reason(
            self,
            request,
            queryset,
            action="lock_gates",
            title="Lock gates",
            question="Lock these gates? Their stages cannot start or finish "
            "until a gate is opened again.",
        )
        if page is not None:
            return page
        self._gate_set(request, queryset, "lock", reason)
        return None


# --- work orders and assignments --------------------------------------------------


class WorkOrderStageInline(admin.TabularInline):
    model = WorkOrderStage
    fields = [
        "position",
        "stage_name",
        "status",
        "planned_start",
        "planned_end",
        "actual_start",
        "actual_end",
        "hold_reason",
    ]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyAdminMixin, PlantAdmin):
    """Read-only: work orders are released through the API; cancel is an action."""

    list_display = [
        "id",
        "product_code",
        "lot_no",
        "qty",
        "runbook",
        "status",
        "planned_start",
        "planned_end",
        "started_at",
        "completed_at",
    ]
    list_filter = ["status", "runbook"]
    search_fields = ["product_code", "lot_no"]
    list_select_related = ["runbook"]
    date_hierarchy = "planned_start"
    inlines = [WorkOrderStageInline]
    actions = ["cancel_work_orders"]

    # Read-only (ReadOnlyAdminMixin): production history is cancelled, not deleted.

    def has_cancel_permission(self, request) -> bool:
        return _is_admin(request)

    @admin.action(
        description="Cancel selected work orders (with a reason)",
        permissions=["cancel"],
    )
    def cancel_work_orders(self, request, queryset):
        open_orders = queryset.exclude(
            status__in=[WorkOrderStatus.COMPLETED, WorkOrderStatus.CANCELLED]
        )
        reason, page = _ask_reason(
            self,
            request,
            queryset,
            action="cancel_work_orders",
            title="Cancel work orders",
            question=f"Cancel these work orders ({open_orders.count()} still open)? "
            "Their stages stop moving.",
        )
        if page is not None:
            return page
        done = 0
        for work_order in queryset:
            try:
                services.work_order_cancel(
                    work_order_id=work_order.pk, reason=reason, actor=request.user
                )
                done += 1
            except DomainError as exc:
                self.message_user(
                    request, f"{work_order}: {exc.message}", messages.ERROR
                )
        if done:
            self.message_user(request, f"{done} work order(s) cancelled.")
        return None


@admin.register(StageAssignment)
class StageAssignmentAdmin(PlantAdmin):
    """Assignments are made through the API; removing one goes through the service."""

    list_display = ["work_order_stage", "user", "assigned_by", "assigned_at"]
    list_filter = ["user__role"]
    search_fields = ["user__username", "work_order_stage__stage_name"]
    list_select_related = ["work_order_stage", "user", "assigned_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj):
        services.stage_unassign(
            stage_id=obj.work_order_stage_id, user_id=obj.user_id, actor=request.user
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
