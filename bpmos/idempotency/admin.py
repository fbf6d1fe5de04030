"""Stored ``Idempotency-Key`` records in the back-office (docs/api.md).

Read-only for auditors and admins: who sent which key for which request, its
status, when it was made and expires, and the status of the answer kept for
replay. Nobody adds or edits one (the middleware writes them). Admins may
delete a key (``services.key_delete``: audited, refused while its request
still runs) and purge the expired ones with the service the beat task runs
(``services.keys_prune``, audited when a person runs it). The stored answer's
body and headers are not shown: they are the answer to one user, and a key's
record is enough to see why a retry was replayed or refused.
"""

from django.contrib import admin
from django.contrib.admin import helpers
from django.utils import timezone

from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin
from bpmos.errors import DomainError
from bpmos.idempotency import services
from bpmos.idempotency.models import IdempotencyKey


class ExpiredFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "Expired"), ("no", "Live")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(expires_at__gt=now)
        return queryset


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(AdminReaderMixin, AuditedModelAdmin):
    list_display = [
        "key",
        "user",
        "method",
        "path",
        "status",
        "response_status",
        "created_at",
        "expires_at",
    ]
    list_filter = ["status", "method", ExpiredFilter, "response_status", "created_at"]
    search_fields = ["key", "path", "user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    ordering = ["-created_at", "-id"]
    fields = [
        "user",
        "key",
        "method",
        "path",
        "fingerprint",
        "status",
        "locked_until",
        "response_status",
        "created_at",
        "completed_at",
        "expires_at",
    ]
    readonly_fields = fields
    actions = ["delete_selected", "purge_expired"]
    action_noun = "key"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Admins only (the site's policy refuses auditors); not a key whose
        # request still runs.
        if obj is not None and services.key_in_progress(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        services.key_delete(key_id=obj.pk, actor=request.user)

    def delete_queryset(self, request, queryset):
        self.apply_each(
            request,
            queryset,
            "Deleted",
            lambda obj: services.key_delete(key_id=obj.pk, actor=request.user),
        )

    def message_user(self, request, message, *args, **kwargs):
        # Django's own "Successfully deleted N keys" would follow apply_each's
        # report (and count refused keys as deleted).
        if str(message).startswith("Successfully deleted"):
            return
        super().message_user(request, message, *args, **kwargs)

    @admin.action(
        description="Purge every expired key (whatever rows are selected)",
        permissions=["delete"],
    )
    def purge_expired(self, request, queryset):
        try:
            deleted = services.keys_prune(actor=request.user)
        except DomainError as error:  # pragma: no cover - the service refuses nothing
            self.message_user(request, error.message, level="error")
            return
        self.message_user(request, f"Purged {deleted} expired key(s).")

    def changelist_view(self, request, extra_context=None):
        # "Purge expired" is not about the selected rows: run it with none
        # selected (Django refuses an action with no rows; "select across"
        # stands for them, and the action ignores its queryset).
        if (
            request.method == "POST"
            and request.POST.get("action") == "purge_expired"
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        ):
            request.POST = request.POST.copy()
            request.POST["select_across"] = "1"
            request.POST.setlist(helpers.ACTION_CHECKBOX_NAME, ["all"])
        return super().changelist_view(request, extra_context)
