"""Admin of compliance's mailing area: scheduled returns and their deliveries.

Admins schedule a return (name, period, recipients, format, CSV schema, a
django-celery-beat crontab); saving keeps its beat ``PeriodicTask`` in step
(``compliance.mailing.schedule_sync``), deleting removes it. *Send now* queues
the send at once. Every attempt's ``EmailDelivery`` shows read-only, inline on
the schedule and as its own list. Auditors read all of it; only admins write.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from bpmos import audit
from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    is_admin_reader,
)
from bpmos.errors import InvalidInput
from bpmos.roles import Role
from compliance import mailing
from compliance.models import EmailDelivery, ScheduledReturn


def _is_admin(request) -> bool:
    return is_admin_reader(request) and request.user.role == Role.ADMIN


class ScheduledReturnForm(forms.ModelForm):
    """The recipients checked address by address (``mailing.recipients_parse``)
    and stored as one clean comma-separated list."""

    class Meta:
        model = ScheduledReturn
        fields = [
            "name",
            "period",
            "recipients",
            "format",
            "schema",
            "crontab",
            "enabled",
        ]
        widgets = {"recipients": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def clean_recipients(self) -> str:
        try:
            addresses = mailing.recipients_parse(self.cleaned_data["recipients"])
        except InvalidInput as error:
            raise forms.ValidationError(error.details["recipients"]) from None
        return ", ".join(addresses)


class EmailDeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = EmailDelivery
    fields = [
        "created_at",
        "attempt",
        "status",
        "recipients",
        "attachment_name",
        "ret",
        "sent_at",
        "error",
    ]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None) -> bool:
        return is_admin_reader(request)


@admin.register(ScheduledReturn)
class ScheduledReturnAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Auditors and admins read; admins add, change, delete and send now."""

    form = ScheduledReturnForm
    list_display = [
        "name",
        "period",
        "format",
        "crontab",
        "recipients",
        "enabled",
        "owner",
        "last_sent_at",
        "last_status",
    ]
    list_filter = ["enabled", "period", "format", "last_status"]
    list_select_related = ["crontab", "owner"]
    search_fields = ["name", "recipients"]
    readonly_fields = [
        "owner",
        "periodic_task",
        "created_at",
        "last_sent_at",
        "last_status",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": ["name", "period", "recipients", "format", "schema"],
            },
        ),
        (
            "When (django-celery-beat crontab; mind its time zone)",
            {"fields": ["crontab", "enabled", "periodic_task"]},
        ),
        (
            "State",
            {"fields": ["owner", "created_at", "last_sent_at", "last_status"]},
        ),
    ]
    inlines = [EmailDeliveryInline]
    actions = ["send_now"]

    def has_add_permission(self, request) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _is_admin(request)

    def has_send_permission(self, request) -> bool:
        return _is_admin(request)

    def save_model(self, request, obj, form, change):
        # The admin who (last) schedules it approves every return it sends.
        previous = obj.owner if change else None
        obj.owner = request.user
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if previous is not None and previous.pk != request.user.pk:
                audit.record(
                    actor=request.user,
                    action="compliance.scheduledreturn.owner_changed",
                    target=obj,
                    before={"owner": previous.get_username()},
                    after={"owner": request.user.get_username()},
                )
            mailing.schedule_sync(obj)

    def delete_model(self, request, obj):
        with transaction.atomic():
            mailing.schedule_unsync(obj)
            super().delete_model(request, obj)

    @admin.action(
        description="Send now (build the return for its period and mail it)",
        permissions=["send"],
    )
    def send_now(self, request, queryset):
        from compliance.tasks_mailing import scheduled_return_send_task

        ids = list(queryset.order_by("id").values_list("id", flat=True))
        for schedule_id in ids:
            transaction.on_commit(
                lambda schedule_id=schedule_id: scheduled_return_send_task.apply_async(
                    kwargs={"schedule_id": schedule_id}
                )
            )
        self.message_user(
            request,
            f"Queued {len(ids)} scheduled return(s); see their deliveries.",
            messages.SUCCESS,
        )


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Every attempt to mail a scheduled return, read-only."""

    list_display = [
        "created_at",
        "schedule",
        "attempt",
        "status",
        "recipients",
        "attachment_name",
        "sent_at",
        "short_error",
    ]
    list_filter = ["status", "schedule"]
    list_select_related = ["schedule"]
    search_fields = ["schedule__name", "recipients", "subject", "error"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "schedule",
        "attempt",
        "status",
        "recipients",
        "subject",
        "ret",
        "attachment_name",
        "checksum",
        "error",
        "created_at",
        "sent_at",
    ]
    fields = readonly_fields

    @admin.display(description="Error")
    def short_error(self, obj: EmailDelivery) -> str:
        return obj.error[:120]
