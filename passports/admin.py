"""Battery passports in the Django admin: auditors and admins browse; nobody
edits a passport, its ledger or its records here.

A passport's state, hold, custodian and version are the projection of its
ledger and change only by ledger events (``passports.ledger.append``); its
identity and attribute groups are fixed at registration. So every model here
is read-only for everyone, superusers included (no add, change or delete), and
the ledger is shown inline on its passport and in its own list. The one way
to change something is the hold/release actions, which call
``passports.services.passport_event_record`` like the API does (same rules, same
ledger event, same audit record) for whoever ``bpmos.access`` lets hold.
"""

import contextlib
import uuid

from django.contrib import admin

from bpmos import access
from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    is_admin_reader,
    reason_action_form,
)
from passports import bpan as bpan_rules
from passports import services
from passports.models import (
    DispatchJob,
    EventKind,
    Passport,
    PassportEvent,
    ProvisioningAttempt,
    TelemetryReading,
)


class ReadOnlyAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Visible to auditors and admins (by plant role, as the audit log's admin);
    no add, change or delete for anyone."""


# The action bar with a box for the reason a hold needs.
HoldActionForm = reason_action_form("Required to put on hold; a note for a release.")


class PassportEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PassportEvent
    fields = [
        "version",
        "kind",
        "occurred_at",
        "actor_username",
        "data",
        "prev_hash",
        "hash",
    ]
    readonly_fields = fields
    ordering = ["version"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None) -> bool:
        # Auditors hold no model permissions: visibility follows the role.
        return is_admin_reader(request)


@admin.register(Passport)
class PassportAdmin(ReadOnlyAdmin):
    list_display = [
        "serial",
        "kind",
        "bpan",
        "model",
        "lot",
        "state",
        "on_hold",
        "custodian_kind",
        "custodian_name",
        "version",
        "manufactured_at",
    ]
    list_filter = ["kind", "state", "custodian_kind", "on_hold", "chemistry"]
    search_fields = ["serial", "bpan", "barcode", "rfid", "model", "lot"]
    date_hierarchy = "manufactured_at"
    list_select_related = ["parent"]
    inlines = [PassportEventInline]
    action_form = HoldActionForm
    actions = ["hold_passports", "release_holds"]
    action_noun = "passport"

    def action_label(self, obj) -> str:
        return obj.serial

    def get_search_results(self, request, queryset, search_term):
        # Any identifier finds its passport: a UUID, or a BPAN written in
        # groups ("IN-BPM-…") or lower case, as well as the text fields.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            with contextlib.suppress(ValueError):
                found |= queryset.filter(uuid=uuid.UUID(term))
            compact = bpan_rules.compact(term)
            if len(compact) == bpan_rules.LENGTH:
                found |= queryset.filter(bpan=compact)
        return found, duplicates

    def has_hold_permission(self, request) -> bool:
        return access.allows(
            access.ACTIONS.get(f"passport-event.{EventKind.HELD}"),
            getattr(request.user, "role", None),
        )

    @admin.action(
        description="Put selected passports on hold (reason typed beside)",
        permissions=["hold"],
    )
    def hold_passports(self, request, queryset):
        if (reason := self.typed_reason(request)) is None:
            return
        self.apply_each(
            request,
            queryset.order_by("serial"),
            "Held",
            lambda passport: services.passport_event_record(
                passport_id=passport.pk,
                kind=EventKind.HELD,
                data={"reason": reason},
                actor=request.user,
            ),
        )

    @admin.action(
        description="Release the hold on selected passports", permissions=["hold"]
    )
    def release_holds(self, request, queryset):
        note = self.typed_reason(request, required=False)
        self.apply_each(
            request,
            queryset.order_by("serial"),
            "Released",
            lambda passport: services.passport_event_record(
                passport_id=passport.pk,
                kind=EventKind.RELEASED,
                data={"note": note} if note else {},
                actor=request.user,
            ),
        )


@admin.register(PassportEvent)
class PassportEventAdmin(ReadOnlyAdmin):
    """The ledger: append-only (the database refuses UPDATE and DELETE too)."""

    list_display = [
        "passport",
        "version",
        "kind",
        "occurred_at",
        "actor_username",
        "short_hash",
    ]
    list_filter = ["kind"]
    search_fields = ["passport__serial", "passport__bpan", "actor_username", "=hash"]
    list_select_related = ["passport"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    actions = None
    show_full_result_count = False

    @admin.display(description="Hash")
    def short_hash(self, obj: PassportEvent) -> str:
        return obj.hash[:12]


@admin.register(DispatchJob)
class DispatchJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "passport", "state", "reason", "created_at", "updated_at"]
    list_filter = ["state"]
    search_fields = ["passport__serial", "passport__bpan", "reason"]
    list_select_related = ["passport"]
    actions = None


@admin.register(TelemetryReading)
class TelemetryReadingAdmin(ReadOnlyAdmin):
    list_display = [
        "passport",
        "ts",
        "soh_percent",
        "soc_percent",
        "temperature_c",
        "voltage_v",
        "current_a",
    ]
    search_fields = ["passport__serial", "passport__bpan"]
    list_select_related = ["passport"]
    date_hierarchy = "ts"
    ordering = ["-ts"]
    actions = None
    show_full_result_count = False


@admin.register(ProvisioningAttempt)
class ProvisioningAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "passport",
        "status",
        "interface",
        "node_id",
        "requested_by",
        "requested_at",
        "finished_at",
        "error",
    ]
    list_filter = ["status"]
    search_fields = ["passport__serial", "passport__bpan", "error"]
    list_select_related = ["passport", "requested_by"]
    actions = None
