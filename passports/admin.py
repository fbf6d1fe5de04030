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

Every reader may verify the ledgers (``passports.ledger.verify``, as
``GET /api/passports/verify``): a button on the passports' and the ledger's
lists (every ledger), one on a passport's page (its own), and an action for the
selected passports; the result (how many events were verified, or the first
broken link) is left as a message on the page.
"""

import contextlib
import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import URLField
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from bpmos import access
from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    is_admin_reader,
    reason_action_form,
)
from bpmos.adminlarge import LargeTableAdmin
from passports import attributes, ledger, services
from passports import bpan as bpan_rules
from passports.models import (
    DispatchJob,
    EventKind,
    Passport,
    PassportAccessGrant,
    PassportEvent,
    ProvisioningAttempt,
    TelemetryReading,
)


class ReadOnlyAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Visible to auditors and admins (by plant role, as the audit log's admin);
    no add, change or delete for anyone."""


def ledger_message(result: ledger.LedgerVerification) -> tuple[int, str]:
    """The level and text of the message a ledger verification leaves."""
    if result.ok:
        return messages.SUCCESS, (
            f"The ledgers are intact: {result.events} events of "
            f"{result.passports} passport(s) verified."
        )
    broken = result.first_broken
    return messages.ERROR, (
        f"The ledger of {broken.serial} is broken at event {broken.version}, "
        f"{broken.problem}: {broken.message} ({result.events} events of "
        f"{result.passports} passport(s) checked.)"
    )


class LedgerVerifyMixin:
    """The verify views of the passports' admin: every ledger
    (``passports_passport_verify``, from the passports' or the ledger's list),
    or one passport's (``passports_passport_verify_one``, from its page)."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("verify/", view(self.verify_view), name="passports_passport_verify"),
            path(
                "<int:passport_id>/verify/",
                view(self.verify_view),
                name="passports_passport_verify_one",
            ),
            *super().get_urls(),
        ]

    def verify_view(self, request, passport_id: int | None = None):
        """POST: verify every ledger, or one passport's; back to where it came
        from with the result (a read: every reader may run it)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = None if passport_id is None else [passport_id]
        if request.method == "POST":
            level, text = ledger_message(ledger.verify(passport_ids=ids))
            self.message_user(request, text, level)
        if passport_id is not None:
            back = reverse("admin:passports_passport_change", args=[passport_id])
        elif request.POST.get("back") == "ledger":
            back = reverse("admin:passports_passportevent_changelist")
        else:
            back = reverse("admin:passports_passport_changelist")
        return HttpResponseRedirect(back)


# The action bar with a box for the reason a hold needs.
class HoldActionForm(
    reason_action_form("Required to put on hold; a note for a release.")
):
    """The reason box, and the password a release (the QA release, a signed
    step) is signed with."""

    password = forms.CharField(
        required=False,
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"size": 20, "autocomplete": "off"}),
        help_text="Re-enter yours to sign a release.",
    )


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
class PassportAdmin(LedgerVerifyMixin, ReadOnlyAdmin):
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
    actions = ["verify_ledgers", "hold_passports", "release_holds"]
    action_noun = "passport"
    # Read-only here; the form field only says how an address would be read.
    formfield_overrides = {URLField: {"assume_scheme": "https"}}

    def action_label(self, obj) -> str:
        return obj.serial

    def get_fields(self, request, obj=None):
        # The EU attribute tiers (passports.attributes): an admin reads the
        # legitimate-interest fields; auditors and admins the authority tier.
        hidden = attributes.hidden_fields(attributes.reader_tiers(request.user))
        return [name for name in super().get_fields(request, obj) if name not in hidden]

    def get_readonly_fields(self, request, obj=None):
        hidden = attributes.hidden_fields(attributes.reader_tiers(request.user))
        return [
            name
            for name in super().get_readonly_fields(request, obj)
            if name not in hidden
        ]

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

    @admin.action(
        description="Verify the ledgers of the selected passports",
        permissions=["view"],
    )
    def verify_ledgers(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        level, text = ledger_message(ledger.verify(passport_ids=ids))
        self.message_user(request, text, level)

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
                password=request.POST.get("password") or None,
            ),
        )


@admin.register(PassportEvent)
class PassportEventAdmin(ReadOnlyAdmin, LargeTableAdmin):
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
class TelemetryReadingAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = [
        "passport",
        "ts",
        "soh_percent",
        "soc_percent",
        "temperature_c",
        "voltage_v",
        "current_a",
    ]
    # No index on the time alone (the readings are read per pack): the
    # newest stored first by the primary key, a date filter that needs no
    # query to offer its choices, no sorting by a column.
    list_filter = [("ts", admin.DateFieldListFilter)]
    search_fields = ["passport__serial", "passport__bpan"]
    list_select_related = ["passport"]
    ordering = ["-id"]
    sortable_by = ()
    actions = None


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


@admin.register(PassportAccessGrant)
class PassportAccessGrantAdmin(ReadOnlyAdmin):
    """Access grants for outside parties (issued and revoked through the API,
    ``passports.grants``); the token's hash is never shown."""

    list_display = [
        "id",
        "party",
        "passport",
        "customer",
        "issued_by",
        "issued_at",
        "expires_at",
        "revoked_at",
    ]
    fields = [*list_display[1:], "revoked_by"]
    readonly_fields = fields
    search_fields = ["party", "customer", "passport__serial"]
    list_select_related = ["passport", "issued_by"]
    actions = None
