"""Users in the admin: role changes and (de)activation go through the services."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from bpmos.accounts import services
from bpmos.accounts.models import User
from bpmos.errors import DomainError


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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
        # Route a role change made in the form through the audited service.
        if change and "role" in form.changed_data:
            new_role = obj.role
            obj.role = form.initial.get("role", obj.role)
            super().save_model(request, obj, form, change)
            services.user_role_change(user_id=obj.pk, role=new_role, actor=request.user)
            obj.refresh_from_db()
        else:
            super().save_model(request, obj, form, change)
