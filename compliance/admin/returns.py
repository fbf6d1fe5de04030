"""Admin of compliance's returns area: the CSV layouts (admins edit them; the
columns are checked against the field vocabulary of their level by
``compliance.returns.schema_columns_check``, the one rule), and the returns
themselves, read-only with their pack rows inline and an "approve" action that
calls the same service as ``POST /api/compliance/returns/{id}/approve``."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from bpmos import access
from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from bpmos.errors import InvalidInput
from compliance import returns
from compliance.models import ComplianceReturn, CsvSchema, ReturnLine

# Rows shown inline on a return's page; the API lists them all.
INLINE_LINES = 200


def _role(request) -> str | None:
    return getattr(request.user, "role", None)


class CsvSchemaForm(forms.ModelForm):
    class Meta:
        model = CsvSchema
        fields = ["slug", "name", "level", "columns", "is_default"]
        help_texts = {
            "columns": 'A JSON list of {"header": "...", "field": "..."}, in '
            "column order; the fields a level offers are listed below.",
        }

    def clean(self):
        data = super().clean()
        level, columns = data.get("level"), data.get("columns")
        if level and "columns" not in self.errors:
            try:
                data["columns"] = returns.schema_columns_check(level, columns)
            except InvalidInput as error:
                for field, problems in error.details.items():
                    for problem in problems:
                        self.add_error(field if field in self.fields else None, problem)
        if data.get("is_default") and level:
            other = (
                CsvSchema.objects.filter(level=level, is_default=True)
                .exclude(pk=self.instance.pk)
                .first()
            )
            if other is not None:
                self.add_error(
                    "is_default",
                    f"{other.slug} is the default for the {level} level; "
                    "untick it there first.",
                )
        return data


@admin.register(CsvSchema)
class CsvSchemaAdmin(AdminReaderMixin, AuditedModelAdmin):
    """CSV layouts of the regulator's return: admins edit, auditors read."""

    form = CsvSchemaForm
    list_display = ["slug", "name", "level", "is_default", "column_count", "updated_at"]
    list_filter = ["level", "is_default"]
    search_fields = ["slug", "name"]
    readonly_fields = ["field_vocabulary", "updated_at"]
    fields = ["slug", "name", "level", "is_default", "columns", "field_vocabulary"]

    @admin.display(description="Columns")
    def column_count(self, obj) -> int:
        return len(obj.columns or [])

    @admin.display(description="Fields a column may name")
    def field_vocabulary(self, obj):
        parts = []
        for level, fields in returns.FIELDS_BY_LEVEL.items():
            rows = format_html_join(
                "", "<li><code>{}</code>: {}</li>", sorted(fields.items())
            )
            parts.append(format_html("<p><b>{}</b></p><ul>{}</ul>", level, rows))
        return format_html_join("", "{}", ((part,) for part in parts))


class _FirstLines(BaseInlineFormSet):
    def get_queryset(self):
        return super().get_queryset().order_by("id")[:INLINE_LINES]


class ReturnLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReturnLine
    formset = _FirstLines
    extra = 0
    can_delete = False
    verbose_name_plural = f"Pack rows (the first {INLINE_LINES}; the API lists all)"
    fields = [
        "event",
        "occurred_at",
        "serial",
        "bpan",
        "model",
        "category",
        "chemistry",
        "mass_kg",
        "custodian",
    ]
    readonly_fields = fields


@admin.register(ComplianceReturn)
class ComplianceReturnAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Returns, read-only; approving is the API's service, with its roles."""

    list_display = [
        "id",
        "period_start",
        "period_end",
        "financial_year",
        "status",
        "row_count",
        "built_at",
        "built_by",
        "approved_at",
        "approved_by",
        "export_count",
    ]
    list_filter = ["status", "financial_year"]
    search_fields = ["financial_year", "note", "content_hash"]
    date_hierarchy = "built_at"
    inlines = [ReturnLineInline]
    actions = ["approve"]
    fields = [
        "period_start",
        "period_end",
        "financial_year",
        "status",
        "row_count",
        "content_hash",
        "built_at",
        "built_by",
        "approved_at",
        "approved_by",
        "approved_role",
        "export_count",
        "last_exported_at",
        "note",
        "figures_pretty",
    ]
    readonly_fields = fields
    action_noun = "return"

    @admin.display(description="EPR figures (frozen)")
    def figures_pretty(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.figures, indent=2, ensure_ascii=False)
        )

    def has_approve_permission(self, request) -> bool:
        return _role(request) in access.SUPERVISORS

    def action_label(self, obj) -> str:
        return f"Return {obj.pk}"

    @admin.action(description="Approve selected returns", permissions=["approve"])
    def approve(self, request, queryset):
        self.apply_each(
            request,
            queryset.order_by("id"),
            "Approved",
            lambda ret: returns.return_approve(return_id=ret.pk, actor=request.user),
        )
