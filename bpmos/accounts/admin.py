"""Users in the admin: role changes and (de)activation go through the services."""

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
        # A role change made in the form goes through the service (its rules: the
        # last admin stays; staff flags follow the role; its own audit record).
        if change and "role" in form.changed_data:
            new_role = obj.role
            obj.role = form.initial.get("role", obj.role)
            form.changed_data.remove("role")
            super().save_model(request, obj, form, change)
            try:
                services.user_role_change(
                    user_id=obj.pk, role=new_role, actor=request.user
                )
            except DomainError as exc:
                self.message_user(
                    request, f"Role not changed: {exc.message}", messages.ERROR
                )
            obj.refresh_from_db()
        else:
            if not change:
                obj.apply_role_flags()
            super().save_model(request, obj, form, change)
