"""Connectors, their tags and the readings in the Django admin.

Admins configure connectors with their tags inline; every save goes through
``scada.configuration`` (the API's services: the same rules, the same audit
records), and the forms show a refused rule beside its field. Credentials are
never displayed: the form has a write-only password-style box (left blank, the
stored ones stay) and a box to remove them. Comm state and last error are the
collector's (read-only). "Test the connection" runs the same service as
``POST /api/scada/test``. Readings are listed read-only. Auditors browse all
of it read-only.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages

from bpmos.adminkit import AdminReaderMixin, AuditedModelAdmin, ReadOnlyAdminMixin
from bpmos.errors import DomainError, InvalidInput
from scada import configuration, readings
from scada.models import Connector, ScadaReading, Tag


def _show(form: forms.BaseForm, error: InvalidInput, fallback: str | None) -> None:
    """Put a service's 400 beside its field (or on the form)."""
    for field, messages_ in (error.details or {}).items():
        target = field if field in form.fields else fallback
        for message in messages_ if isinstance(messages_, list) else [messages_]:
            form.add_error(target, message)


class ConnectorForm(forms.ModelForm):
    new_credentials = forms.CharField(
        required=False,
        label="Credentials",
        widget=forms.PasswordInput(render_value=False, attrs={"size": 60}),
        help_text="Write-only, never shown. A JSON object: OPC UA takes "
        '{"username": "...", "password": "..."}. Left blank, the stored '
        "credentials stay.",
    )
    clear_credentials = forms.BooleanField(
        required=False, label="Remove the stored credentials"
    )

    class Meta:
        model = Connector
        fields = list(configuration.CONNECTOR_FIELDS)

    def clean_new_credentials(self):
        raw = self.cleaned_data.get("new_credentials") or ""
        if not raw.strip():
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Not JSON (an object of texts).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A JSON object of texts.")
        return value

    def credentials_change(self) -> dict | None:
        """The credentials to store, or None to keep what is stored."""
        if self.cleaned_data.get("clear_credentials"):
            return {}
        return self.cleaned_data.get("new_credentials")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {name: data.get(name) for name in configuration.CONNECTOR_FIELDS}
        values["settings"] = values["settings"] or {}
        credentials = self.credentials_change()
        if credentials is not None:
            values["credentials"] = credentials
        instance = self.instance if self.instance.pk else None
        try:
            configuration.connector_check(values, instance=instance)
        except InvalidInput as error:
            _show(self, error, fallback=None)
        return data


class TagInlineForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["node_id", "tag_name", "unit", "machine", "kind", "area", "enabled"]


class TagInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        connector = self.instance
        if not connector.pk and not connector.kind:
            return
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not form.has_changed():
                continue
            values = {name: data.get(name) for name in configuration.TAG_FIELDS}
            values["connector"] = connector
            values["kind"] = values["kind"] or "analog"
            instance = form.instance if form.instance.pk else None
            try:
                configuration.tag_check(values, instance=instance)
            except InvalidInput as error:
                _show(form, error, fallback=None)


class TagInline(admin.TabularInline):
    model = Tag
    form = TagInlineForm
    formset = TagInlineFormSet
    extra = 0
    raw_id_fields = ["machine"]
    fields = ["node_id", "tag_name", "unit", "machine", "kind", "area", "enabled"]


@admin.register(Connector)
class ConnectorAdmin(AdminReaderMixin, AuditedModelAdmin):
    """Admins write (through the services); auditors read."""

    form = ConnectorForm
    inlines = [TagInline]
    list_display = [
        "name",
        "kind",
        "endpoint",
        "enabled",
        "mode",
        "poll_interval_s",
        "comm_state",
        "last_ok_at",
    ]
    list_filter = ["kind", "enabled", "mode", "comm_state"]
    search_fields = ["name", "endpoint"]
    readonly_fields = [
        "has_credentials",
        "comm_state",
        "last_ok_at",
        "last_error",
        "last_error_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (
            None,
            {"fields": list(configuration.CONNECTOR_FIELDS)},
        ),
        (
            "Credentials",
            {"fields": ["has_credentials", "new_credentials", "clear_credentials"]},
        ),
        (
            "Link (kept by the collector)",
            {
                "fields": [
                    "comm_state",
                    "last_ok_at",
                    "last_error",
                    "last_error_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    actions = ["test_connection"]

    @admin.display(boolean=True, description="Has credentials")
    def has_credentials(self, connector: Connector) -> bool:
        return bool(connector.credentials)

    # Saves go through the services: same rules, same audit records as the API.

    def save_model(self, request, obj, form, change):
        values = {
            name: form.cleaned_data[name]
            for name in configuration.CONNECTOR_FIELDS
            if name in form.cleaned_data
        }
        values["settings"] = values.get("settings") or {}
        credentials = form.credentials_change()
        if credentials is not None:
            values["credentials"] = credentials
        if change:
            changed = {
                name: value
                for name, value in values.items()
                if name in form.changed_data or name == "credentials"
            }
            saved = configuration.connector_update(
                connector_id=obj.pk, actor=request.user, **changed
            )
        else:
            saved = configuration.connector_create(actor=request.user, **values)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        configuration.connector_delete(connector_id=obj.pk, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Tag:
            return super().save_formset(request, form, formset, change)
        connector = form.instance
        # What Django's change message reads of a saved formset.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = (
            [],
            [],
            [],
        )
        for tag_form in formset.forms:
            data = getattr(tag_form, "cleaned_data", None)
            if not data:
                continue
            tag = tag_form.instance
            if data.get("DELETE"):
                if tag.pk:
                    configuration.tag_delete(tag_id=tag.pk, actor=request.user)
                    formset.deleted_objects.append(tag)
                continue
            if not tag_form.has_changed():
                continue
            values = {
                name: data.get(name)
                for name in configuration.TAG_FIELDS
                if name != "connector"
            }
            values["enabled"] = data.get("enabled", True)
            if tag.pk:
                changed = {
                    k: v for k, v in values.items() if k in tag_form.changed_data
                }
                saved = configuration.tag_update(
                    tag_id=tag.pk, actor=request.user, **changed
                )
                formset.changed_objects.append((saved, list(changed)))
            else:
                saved = configuration.tag_create(
                    actor=request.user, connector=connector, **values
                )
                formset.new_objects.append(saved)
        return None

    @admin.action(description="Test the connection")
    def test_connection(self, request, queryset):
        for connector in queryset:
            try:
                result = readings.connector_test(
                    connector_id=connector.pk, actor=request.user
                )
            except DomainError as error:
                self.message_user(
                    request, f"{connector}: {error.message}", messages.ERROR
                )
                continue
            if result["ok"]:
                self.message_user(
                    request,
                    f"{connector}: connected ({result['latency_ms']} ms).",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request, f"{connector}: {result['error']}", messages.ERROR
                )


@admin.register(ScadaReading)
class ScadaReadingAdmin(ReadOnlyAdminMixin, AdminReaderMixin, AuditedModelAdmin):
    """Readings arrive only through ``readings_store``: listed, never edited."""

    list_display = [
        "timestamp",
        "tag_name",
        "value",
        "value_text",
        "unit",
        "quality",
        "alarm_state",
        "connector",
    ]
    list_filter = ["quality", "alarm_state", "connector"]
    search_fields = ["tag_name"]
    date_hierarchy = "timestamp"
    # No COUNT(*) over millions of readings on every page.
    show_full_result_count = False
    list_select_related = ["connector"]
    raw_id_fields = ["tag", "connector"]
