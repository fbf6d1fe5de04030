"""Admin of compliance's categories area: which BWMR category each product
model is (``CategoryDeclaration``). Auditors and admins read; admins declare,
change and remove, through ``compliance.categories`` (which checks and audits
every change). A declaration's model is fixed once saved: to correct a model
code, remove the declaration and declare the right one."""

from __future__ import annotations

from django.contrib import admin, messages

from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin
from bpmos.errors import DomainError
from bpmos.roles import Role
from compliance import categories
from compliance.models import CategoryDeclaration


def _is_admin(request) -> bool:
    return getattr(request.user, "role", None) == Role.ADMIN


@admin.register(CategoryDeclaration)
class CategoryDeclarationAdmin(AdminReaderMixin, AuditedModelAdmin):
    list_display = ["model", "category", "note", "updated_at"]
    list_filter = ["category"]
    search_fields = ["model", "note"]
    ordering = ["model"]
    fields = ["model", "category", "note", "updated_at"]
    readonly_fields = ["updated_at"]
    action_noun = "declaration"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # the model is the declaration's identity
            return ["model", *self.readonly_fields]
        return list(self.readonly_fields)

    def has_add_permission(self, request) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _is_admin(request)

    def save_model(self, request, obj, form, change):
        saved = categories.category_declare(
            model=obj.model,
            category=form.cleaned_data["category"],
            note=form.cleaned_data.get("note", ""),
            actor=request.user,
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        try:
            categories.category_undeclare(declaration_id=obj.pk, actor=request.user)
        except DomainError as error:  # removed meanwhile by someone else
            self.message_user(request, f"{obj}: {error.message}", messages.ERROR)
