"""Admin of SCADA alarms: alert rules (admins edit them, through the same
services as the API), alarms (read-only; the ISA-18.2 actions call the
services), their history (the event journal) and floods (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from bpmos import access
from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from bpmos.adminlarge import IndexedValuesFilter, LargeTableAdmin, listed_values
from bpmos.errors import DomainError
from bpmos.roles import Role
from scada import alarm_rules, alarms
from scada.alarm_evaluation import alert_rule_problems
from scada.models import AlarmEvent, AlarmFlood, AlarmHistory, AlarmState, AlertRule


def _role(request) -> str | None:
    return getattr(request.user, "role", None)


class AlertRuleForm(forms.ModelForm):
    """The rule's limits checked by the API's own check."""

    class Meta:
        model = AlertRule
        fields = list(alarm_rules.RULE_FIELDS)

    def clean(self):
        data = super().clean()
        problems = alert_rule_problems(
            high_limit=data.get("high_limit"),
            low_limit=data.get("low_limit"),
            deadband=data.get("deadband"),
        )
        for field, errors in problems.items():
            for error in errors:
                self.add_error(field, error)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Auditors and admins read; admins write, through ``scada.alarm_rules``
    (which audits, and starts a disabled or re-tagged rule over)."""

    form = AlertRuleForm
    list_display = [
        "name",
        "tag",
        "low_limit",
        "high_limit",
        "deadband",
        "on_delay_s",
        "off_delay_s",
        "severity",
        "enabled",
        "in_alarm",
    ]
    list_filter = ["enabled", "severity", "create_work_order"]
    list_select_related = ["tag"]
    search_fields = ["name", "tag__tag_name"]
    autocomplete_fields: list[str] = []
    readonly_fields = [
        "in_alarm",
        "alarm_side",
        "pending_since",
        "clearing_since",
        "last_reading_at",
        "last_value",
    ]

    def has_add_permission(self, request) -> bool:
        return _role(request) == Role.ADMIN

    def has_change_permission(self, request, obj=None) -> bool:
        return _role(request) == Role.ADMIN

    def has_delete_permission(self, request, obj=None) -> bool:
        if _role(request) != Role.ADMIN:
            return False
        # A rule with an open alarm is refused (409 in the API): disable it.
        return (
            obj is None
            or not AlarmEvent.objects.filter(rule=obj, closed_at__isnull=True).exists()
        )

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if "tag" in data:
            data["tag"] = data["tag"].pk
        if change:
            saved = alarm_rules.alert_rule_update(
                rule_id=obj.pk, data=data, actor=request.user
            )
        else:
            fields = {name: form.cleaned_data[name] for name in alarm_rules.RULE_FIELDS}
            fields["tag"] = fields["tag"].pk
            saved = alarm_rules.alert_rule_create(data=fields, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        try:
            alarm_rules.alert_rule_delete(rule_id=obj.pk, actor=request.user)
        except DomainError as error:  # an open alarm appeared meanwhile
            self.message_user(request, f"{obj}: {error.message}", messages.ERROR)


class AlarmActionForm(ActionForm):
    """The action bar with what shelving and the admin actions need."""

    minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=24 * 60,
        label="Minutes",
        help_text="Shelve: how long.",
    )
    reason = forms.CharField(
        required=False,
        max_length=200,
        label="Reason",
        widget=forms.TextInput(attrs={"size": 30}),
        help_text="Shelve, suppress, out of service: why.",
    )


@admin.register(AlarmEvent)
class AlarmEventAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Alarms, read-only; the actions are the API's, with its roles."""

    list_display = [
        "id",
        "timestamp",
        "tag_name",
        "kind",
        "status",
        "active",
        "severity",
        "area",
        "value",
        "limit",
        "acknowledged_at",
        "shelved_until",
        "exception",
    ]
    list_filter = ["status", "severity", "kind", "active", "area"]
    search_fields = ["tag_name", "message", "area"]
    date_hierarchy = "timestamp"
    ordering = ["-timestamp", "-id"]
    action_form = AlarmActionForm
    actions = [
        "acknowledge",
        "shelve",
        "unshelve",
        "suppress",
        "unsuppress",
        "remove_from_service",
        "return_to_service",
    ]

    def has_acknowledge_permission(self, request) -> bool:
        return _role(request) in access.SHOP_FLOOR

    def has_shelve_permission(self, request) -> bool:
        return _role(request) in access.SUPERVISORS

    def has_service_permission(self, request) -> bool:
        return _role(request) == Role.ADMIN

    action_noun = "alarm"

    def action_label(self, obj) -> str:
        return f"Alarm {obj.pk}"

    def _each(self, request, queryset, verb: str, call) -> None:
        self.apply_each(request, queryset.order_by("id"), verb, call)

    def _typed(self, request, name: str) -> str:
        return (request.POST.get(name) or "").strip()

    @admin.action(
        description="Acknowledge selected alarms", permissions=["acknowledge"]
    )
    def acknowledge(self, request, queryset):
        self._each(
            request,
            queryset,
            "Acknowledged",
            lambda alarm: alarms.alarm_acknowledge(
                alarm_id=alarm.pk, actor=request.user
            ),
        )

    @admin.action(
        description="Shelve selected alarms (minutes and reason typed beside)",
        permissions=["shelve"],
    )
    def shelve(self, request, queryset):
        reason, minutes = (
            self._typed(request, "reason"),
            self._typed(request, "minutes"),
        )
        if not reason or not minutes.isdigit():
            self.message_user(
                request,
                "Type the minutes and a reason beside the action menu; nothing "
                "was shelved.",
                messages.ERROR,
            )
            return
        self._each(
            request,
            queryset,
            "Shelved",
            lambda alarm: alarms.alarm_shelve(
                alarm_id=alarm.pk,
                actor=request.user,
                reason=reason,
                minutes=int(minutes),
            ),
        )

    @admin.action(description="Unshelve selected alarms", permissions=["shelve"])
    def unshelve(self, request, queryset):
        self._each(
            request,
            queryset,
            "Unshelved",
            lambda alarm: alarms.alarm_unshelve(alarm_id=alarm.pk, actor=request.user),
        )

    def _with_reason(self, request, queryset, verb: str, service) -> None:
        reason = self.typed_reason(request)
        if reason is None:
            return
        self._each(
            request,
            queryset,
            verb,
            lambda alarm: service(alarm_id=alarm.pk, actor=request.user, reason=reason),
        )

    @admin.action(
        description="Suppress selected alarms (reason typed beside)",
        permissions=["service"],
    )
    def suppress(self, request, queryset):
        self._with_reason(request, queryset, "Suppressed", alarms.alarm_suppress)

    @admin.action(description="Unsuppress selected alarms", permissions=["service"])
    def unsuppress(self, request, queryset):
        self._each(
            request,
            queryset,
            "Unsuppressed",
            lambda alarm: alarms.alarm_unsuppress(
                alarm_id=alarm.pk, actor=request.user
            ),
        )

    @admin.action(
        description="Take selected alarms out of service (reason typed beside)",
        permissions=["service"],
    )
    def remove_from_service(self, request, queryset):
        self._with_reason(
            request, queryset, "Took out of service", alarms.alarm_remove_from_service
        )

    @admin.action(
        description="Return selected alarms to service", permissions=["service"]
    )
    def return_to_service(self, request, queryset):
        self._each(
            request,
            queryset,
            "Returned to service",
            lambda alarm: alarms.alarm_return_to_service(
                alarm_id=alarm.pk, actor=request.user
            ),
        )


@admin.register(AlarmFlood)
class AlarmFloodAdmin(ReadOnlyAdminMixin, AdminReaderMixin, admin.ModelAdmin):
    """Floods, as detected (read-only)."""

    list_display = ["area", "started_at", "ended_at", "alarm_count", "peak_rate"]
    list_filter = ["area"]
    ordering = ["-started_at", "-id"]


@admin.register(AlarmHistory)
class AlarmHistoryAdmin(ReadOnlyAdminMixin, AdminReaderMixin, LargeTableAdmin):
    """Every change of every alarm (ISA-18.2's journal), read-only."""

    list_display = [
        "at",
        "alarm",
        "change",
        "from_state",
        "to_state",
        "area",
        "value",
        "actor",
        "note",
    ]
    # A journal of every change (bpmos.adminlarge): the area is searched,
    # not listed (its distinct values would read every row).
    list_filter = [
        ("change", IndexedValuesFilter),
        ("to_state", listed_values(AlarmState.values)),
    ]
    search_fields = ["alarm__tag_name", "area", "note", "actor__username"]
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    list_select_related = ["alarm", "actor"]
    raw_id_fields = ["alarm", "rule", "actor"]
