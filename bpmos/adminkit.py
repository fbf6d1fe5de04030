"""Admin building blocks shared by every app's admin.py: the audited ModelAdmin,
who sees the plant's admin pages, read-only pages, and the reason typed beside an
action."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.serializers.json import DjangoJSONEncoder
from django.forms.models import model_to_dict

from bpmos import audit
from bpmos.errors import DomainError
from bpmos.roles import Role

# Who sees the plant's pages in the admin: by plant role, not Django's model
# permissions (auditors are staff but not superusers and hold no permission rows).
ADMIN_READERS = frozenset({Role.AUDITOR, Role.ADMIN})


def is_admin_reader(request) -> bool:
    """An active staff user whose plant role may read the admin pages."""
    user = request.user
    return bool(
        user.is_active
        and user.is_staff
        and getattr(user, "role", None) in ADMIN_READERS
    )


class AdminReaderMixin:
    """Admin pages visible to auditors and admins (``ADMIN_READERS``)."""

    def has_module_permission(self, request) -> bool:
        return is_admin_reader(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_admin_reader(request)


class ReadOnlyAdminMixin:
    """No add, change or delete for anyone: rows only the services write (or
    history). Put it first among the bases; it serves inlines too."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def reason_action_form(help_text: str) -> type[ActionForm]:
    """The action bar with a box for the reason typed beside the action menu
    (read by ``AuditedModelAdmin.typed_reason``); ``help_text`` says which
    actions need it."""
    reason = forms.CharField(
        required=False,
        max_length=300,
        label="Reason",
        widget=forms.TextInput(attrs={"size": 40}),
        help_text=help_text,
    )
    return type("ReasonActionForm", (ActionForm,), {"reason": reason})


# Never copied into the audit log, whatever the model.
_SECRET_FIELDS = {"password"}


def _jsonable(value):
    """A snapshot value as the audit log stores it: sets and tuples as lists,
    anything JSON cannot carry (a time zone, say) as its text."""
    if isinstance(value, set | tuple):
        value = list(value)
    try:
        json.dumps(value, cls=DjangoJSONEncoder)
    except TypeError:
        return str(value)
    return value


def _snapshot(obj, fields) -> dict:
    data = model_to_dict(obj, fields=[f for f in fields if f not in _SECRET_FIELDS])
    return {key: _jsonable(value) for key, value in data.items()}


class AuditedModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes land in the audit log.

    Actions are named ``<app_label>.<model>.admin_created|admin_changed|admin_deleted``
    and carry the before/after of the fields the form changed. Models whose writes
    have rules of their own should route those through their services instead (as
    the user admin does for roles); this covers the plain edits.
    """

    def _action(self, obj, verb: str) -> str:
        return f"{obj._meta.label_lower}.admin_{verb}"

    def save_model(self, request, obj, form, change):
        fields = [name for name in form.changed_data if name not in _SECRET_FIELDS]
        before = None
        if change and fields:
            before = _snapshot(type(obj).objects.get(pk=obj.pk), fields)
        super().save_model(request, obj, form, change)
        if not change:
            concrete = [f.name for f in obj._meta.concrete_fields]
            audit.record(
                actor=request.user,
                action=self._action(obj, "created"),
                target=obj,
                after=_snapshot(obj, concrete),
            )
        else:
            after = _snapshot(obj, fields)
            # Forms can flag a field changed whose value is the same (e.g. a
            # datetime re-submitted to the second); only real changes are recorded.
            same = [
                k for k in after if before is not None and before.get(k) == after[k]
            ]
            for key in same:
                before.pop(key)
                after.pop(key)
            if "password" in form.changed_data:
                after["password"] = "(changed)"
            if not after:
                return
            audit.record(
                actor=request.user,
                action=self._action(obj, "changed"),
                target=obj,
                before=before,
                after=after,
            )

    def delete_model(self, request, obj):
        snapshot = _snapshot(obj, [f.name for f in obj._meta.concrete_fields])
        action, label, pk = (
            self._action(obj, "deleted"),
            obj._meta.label_lower,
            str(obj.pk),
        )
        super().delete_model(request, obj)
        audit.record(
            actor=request.user,
            action=action,
            target=None,
            target_type=label,
            target_id=pk,
            before=snapshot,
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def typed_reason(self, request, *, required: bool = True) -> str | None:
        """The reason typed beside the action menu (the action form's ``reason``).

        Required and blank: tells the user that nothing was changed and returns
        None, so the action stops before touching a row.
        """
        reason = (request.POST.get("reason") or "").strip()
        if required and not reason:
            self.message_user(
                request,
                "Type a reason beside the action menu; nothing was changed.",
                messages.ERROR,
            )
            return None
        return reason

    # Admin actions run the app's service once per selected row: a refusal names
    # its row and the rest still run (each service call is its own transaction).
    action_noun = "row"  # "3 item(s)"

    def action_label(self, obj) -> str:
        return str(obj)

    def apply_each(self, request, queryset, verb: str, call) -> None:
        """Call ``call(obj)`` for each selected row; report refusals and the count."""
        done = 0
        for obj in queryset:
            try:
                call(obj)
            except DomainError as error:
                self.message_user(
                    request,
                    f"{self.action_label(obj)}: {error.message}",
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            noun = self.action_noun
            self.message_user(request, f"{verb} {done} {noun}(s).", messages.SUCCESS)
