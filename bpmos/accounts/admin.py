"""Users in the admin: role changes and (de)activation go through the services
(the list actions and the change form alike)."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from bpmos.accounts import services
from bpmos.accounts.models import User
from bpmos.adminkit import AuditedModelAdmin
from bpmos.errors import DomainError


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = [
        "username",
        "role",
        "is_active",
        "first_name",
        "last_name",
        "last_login",
    ]
    list_filter = ["role", "is_active", "is_staff"]
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Plant role", {"fields": ("role",)}))
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Plant role", {"fields": ("role",)}),
    )
    actions = ["deactivate", "reactivate"]

    def _set_active(self, request, queryset, active: bool) -> None:
        for user in queryset:
            try:
                services.user_set_active(
                    user_id=user.pk, active=active, actor=request.user
                )
            except DomainError as exc:
                self.message_user(request, f"{user}: {exc.message}", messages.ERROR)

    @admin.action(description="Deactivate selected users")
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Reactivate selected users")
    def reactivate(self, request, queryset):
        self._set_active(request, queryset, True)

    def save_model(self, request, obj, form, change):
        # A role change or (de)activation made in the form goes through its service
        # (its rules: the last admin stays; staff flags follow the role; a
        # deactivation ends the user's tokens; its own audit record).
        if not change:
            obj.apply_role_flags()
            super().save_model(request, obj, form, change)
            return
        wanted = {}
        for field in ("role", "is_active"):
            if field in form.changed_data:
                wanted[field] = getattr(obj, field)
                setattr(obj, field, form.initial.get(field, getattr(obj, field)))
                form.changed_data.remove(field)
        super().save_model(request, obj, form, change)
        if "role" in wanted:
            self._call(
                request,
                "Role not changed",
                services.user_role_change,
                user_id=obj.pk,
                role=wanted["role"],
                actor=request.user,
            )
        if "is_active" in wanted:
            self._call(
                request,
                "Not " + ("reactivated" if wanted["is_active"] else "deactivated"),
                services.user_set_active,
                user_id=obj.pk,
                active=wanted["is_active"],
                actor=request.user,
            )
        obj.refresh_from_db()

    def _call(self, request, failure: str, service, **kwargs) -> None:
        try:
            service(**kwargs)
        except DomainError as exc:
            self.message_user(request, f"{failure}: {exc.message}", messages.ERROR)
