"""Stock in the Django admin: categories, locations, items, reservations and
stock movements. Admins write; auditors (staff without model permissions)
browse everything read-only.

What has rules goes through ``inventory.services``, never around them:

* an item is added through ``item_receive`` (its receipt is recorded, audited and
  published); afterwards its status, reason, quantity and location are
  read-only, changed by the actions Hold / Release hold / Block (a reason typed
  beside the action menu), by the API's moves and issues;
* reservations are made through the API; the admin lists them and releases them
  through ``reservation_release``;
* stock movements are the record of what moved: read-only.

Items export to CSV (stdlib ``csv``), with what is reserved and available.
Categories and locations are plain audited edits; a location's place in the
hierarchy is checked by ``Location.clean``.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, Sum
from django.http import HttpResponse
from django.utils import timezone

from bpmos.adminkit import (
    AdminReaderMixin,
    AuditedModelAdmin,
    ReadOnlyAdminMixin,
    reason_action_form,
)
from bpmos.csvsafe import csv_bytes
from bpmos.errors import DomainError
from bpmos.roles import Role
from elog import audit
from inventory import services
from inventory.models import (
    Category,
    Item,
    Location,
    Reservation,
    ReservationStatus,
    StockMovement,
    available_quantity,
)
from inventory.selectors import item_age

# Service error keys (the API's camelCase) -> the admin form's field names.
_FORM_FIELDS = {
    "id": "code",
    "locationId": "location",
    "batchRef": "batch_ref",
    "receivedAt": "received_at",
}


def _role(request) -> str | None:
    return getattr(request.user, "role", None)


class StockAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Admins write (they are superusers); auditors read."""


class ReadOnlyStockAdmin(ReadOnlyAdminMixin, StockAdmin):
    """A record written only by the services."""


# --- categories and locations ------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(StockAdmin):
    list_display = ["name", "slug", "tracking", "position"]
    list_editable = ["position"]
    search_fields = ["name", "slug"]
    ordering = ["position", "name"]


@admin.register(Location)
class LocationAdmin(StockAdmin):
    list_display = ["code", "path_display", "kind", "parent", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    list_select_related = ["parent__parent"]
    autocomplete_fields = ["parent"]

    @admin.display(description="Path")
    def path_display(self, obj: Location) -> str:
        return obj.path

    def get_search_results(self, request, queryset, search_term):
        # The parent picker offers only what can be a parent (zones and racks).
        queryset, duplicates = super().get_search_results(
            request, queryset, search_term
        )
        if request.GET.get("field_name") == "parent":
            queryset = queryset.exclude(kind="bin")
        return queryset, duplicates


# --- items -------------------------------------------------------------------------


# The action bar with a box for the reason Hold and Block need.
ReasonActionForm = reason_action_form("Required by Hold and Block.")


class ItemAddForm(forms.ModelForm):
    """A receipt: checked by the service's own rules, shown on the form."""

    class Meta:
        model = Item
        fields = [
            "code",
            "sku",
            "category",
            "location",
            "quantity",
            "unit",
            "batch_ref",
            "received_at",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.item_receive_check(
                code=data["code"].strip(),
                sku=data["sku"].strip(),
                category_slug=data["category"].slug,
                location_code=data["location"].code,
                quantity=data["quantity"],
                unit=data["unit"],
                batch_ref=(data.get("batch_ref") or "").strip(),
                received_at=data.get("received_at"),
            )
        except DomainError as exc:
            for key, problems in exc.details.items():
                for problem in problems:
                    self.add_error(_FORM_FIELDS.get(key, key), problem)
        return data


class ReservationInline(admin.TabularInline):
    model = Reservation
    fields = ["quantity", "work_order", "dispatch_ref", "status", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class LocationListFilter(admin.RelatedFieldListFilter):
    """The locations by their paths, read in one query (a path names the
    parents: Django's own filter read them a location at a time)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin) or ()
        locations = Location.objects.select_related("parent__parent").order_by(
            *ordering
        )
        return [(location.pk, str(location)) for location in locations]


@admin.register(Item)
class ItemAdmin(StockAdmin):
    list_display = [
        "code",
        "sku",
        "category",
        "location_display",
        "status",
        "quantity",
        "unit",
        "batch_ref",
        "received_at",
    ]
    list_filter = ["category", "status", ("location", LocationListFilter)]
    search_fields = ["code", "sku", "batch_ref"]
    list_select_related = ["category", "location__parent__parent"]
    date_hierarchy = "received_at"
    action_form = ReasonActionForm
    actions = ["export_csv", "hold_items", "release_holds", "block_items"]
    inlines = [ReservationInline]
    # Changed only through the services (actions and the API), once received.
    _ruled = [
        "code",
        "category",
        "location",
        "status",
        "hold_reason",
        "quantity",
        "unit",
        "received_at",
    ]

    @admin.display(description="Location", ordering="location__code")
    def location_display(self, obj: Item) -> str:
        return obj.location.path

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ItemAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self._ruled if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # sku, batch: audited
            return
        item = services.item_receive(
            code=obj.code,
            sku=obj.sku,
            category_slug=obj.category.slug,
            location_code=obj.location.code,
            quantity=obj.quantity,
            unit=obj.unit,
            batch_ref=obj.batch_ref,
            received_at=obj.received_at,
            actor=request.user,
        )
        obj.pk = item.pk
        obj.status, obj.created_at, obj.updated_at = (
            item.status,
            item.created_at,
            item.updated_at,
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # stock leaves by issue, not deletion
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_hold_permission(self, request) -> bool:
        return _role(request) in {Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN}

    # --- actions -------------------------------------------------------------------

    @admin.action(description="Export selected items to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        rows = queryset.select_related("category", "location__parent__parent").annotate(
            reserved_total=Sum(
                "reservations__quantity",
                filter=Q(reservations__status=ReservationStatus.ACTIVE),
                default=0,
            )
        )
        now = timezone.now()
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="inventory-items-{now:%Y%m%d-%H%M}.csv"'
        )
        header = [
            "id",
            "sku",
            "category",
            "location",
            "location_id",
            "status",
            "hold_reason",
            "batch_ref",
            "quantity",
            "unit",
            "reserved",
            "available",
            "received_at",
            "age",
        ]
        lines = []
        for item in rows.order_by("code"):
            lines.append(
                [
                    item.code,
                    item.sku,
                    item.category.name,
                    item.location.path,
                    item.location.code,
                    item.get_status_display(),
                    item.hold_reason,
                    item.batch_ref,
                    item.quantity,
                    item.unit,
                    item.reserved_total,
                    available_quantity(
                        status=item.status,
                        quantity=item.quantity,
                        reserved=item.reserved_total,
                    ),
                    item.received_at.isoformat().replace("+00:00", "Z"),
                    item_age(item.received_at, now=now),
                ]
            )
        # Escaped against CSV injection (a batch reference or hold reason
        # typed as a formula) and audited, as every export of the back-office.
        response.content = csv_bytes(header, lines)
        audit.record(
            actor=request.user,
            action="admin.csv_exported",
            target=None,
            target_type="inventory.item",
            target_id="",
            after={"rows": len(lines), "columns": header, "selection": "selected"},
        )
        return response

    action_noun = "item"

    def action_label(self, obj) -> str:
        return obj.code

    def _each(self, request, queryset, verb: str, call) -> None:
        self.apply_each(request, queryset.order_by("code"), verb, call)

    @admin.action(
        description="Hold selected items (with the reason typed beside)",
        permissions=["hold"],
    )
    def hold_items(self, request, queryset):
        if (reason := self.typed_reason(request)) is None:
            return
        self._each(
            request,
            queryset,
            "Held",
            lambda item: services.item_hold(
                item_code=item.code, reason=reason, actor=request.user
            ),
        )

    @admin.action(
        description="Release the hold on selected items", permissions=["hold"]
    )
    def release_holds(self, request, queryset):
        self._each(
            request,
            queryset,
            "Released",
            lambda item: services.item_release_hold(
                item_code=item.code, actor=request.user
            ),
        )

    @admin.action(
        description="Block selected items (with the reason typed beside)",
        permissions=["hold"],
    )
    def block_items(self, request, queryset):
        if (reason := self.typed_reason(request)) is None:
            return
        self._each(
            request,
            queryset,
            "Blocked",
            lambda item: services.item_block(
                item_code=item.code, reason=reason, actor=request.user
            ),
        )


# --- reservations and movements ----------------------------------------------------


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyStockAdmin):
    """Made through the API; released here through the service."""

    list_display = [
        "id",
        "item",
        "quantity",
        "purpose",
        "status",
        "created_by",
        "created_at",
        "closed_at",
    ]
    list_filter = ["status"]
    search_fields = ["item__code", "item__sku", "dispatch_ref"]
    list_select_related = ["item", "created_by"]
    date_hierarchy = "created_at"
    actions = ["release_reservations"]

    def has_release_permission(self, request) -> bool:
        return _role(request) in {
            Role.PLANNER,
            Role.SUPERVISOR,
            Role.PLANT_HEAD,
            Role.ADMIN,
        }

    @admin.action(description="Release selected reservations", permissions=["release"])
    def release_reservations(self, request, queryset):
        done = 0
        for reservation in queryset.order_by("id"):
            try:
                services.reservation_release(
                    reservation_id=reservation.pk,
                    reason="Released in the admin",
                    actor=request.user,
                )
            except DomainError as error:
                self.message_user(
                    request, f"R-{reservation.pk}: {error.message}", messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(
                request, f"Released {done} reservation(s).", messages.SUCCESS
            )


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyStockAdmin):
    list_display = [
        "moved_at",
        "kind",
        "item",
        "quantity",
        "from_location",
        "to_location",
        "reason",
        "moved_by",
    ]
    list_filter = ["kind"]
    search_fields = ["item__code", "item__sku", "reason"]
    list_select_related = [
        "item",
        "from_location__parent__parent",
        "to_location__parent__parent",
        "moved_by",
    ]
    date_hierarchy = "moved_at"
