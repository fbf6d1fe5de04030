"""Connectors in the Django admin: saves go through the configuration services
(same rules and audit records as the API), credentials are write-only (never
rendered), tags are edited inline, readings are read-only, auditors only read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from elog.models import AuditRecord
from scada.models import Connector, ScadaReading, Tag

pytestmark = pytest.mark.django_db

SECRET = "adm1n-s3cret"
ADD = "admin:scada_connector_add"


def change_url(connector: Connector) -> str:
    return reverse("admin:scada_connector_change", args=[connector.pk])


def form_data(**extra) -> dict:
    data = {
        "name": "Line 1 PLC",
        "kind": "opcua",
        "endpoint": "opc.tcp://plc-1.plant.local:4840",
        "enabled": "on",
        "mode": "poll",
        "poll_interval_s": "5",
        "settings": "{}",
        "new_credentials": "",
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
    }
    data.update(extra)
    return data


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("admin", username="ada"))
    return client


def test_admin_adds_a_connector_with_a_tag_through_the_services(admin_client):
    response = admin_client.post(
        reverse(ADD),
        form_data(
            new_credentials=json.dumps({"username": "bpmos", "password": SECRET}),
            **{
                "tags-TOTAL_FORMS": "1",
                "tags-0-node_id": "ns=2;s=Line1.Temp",
                "tags-0-tag_name": "line1.temp",
                "tags-0-unit": "degC",
                "tags-0-kind": "analog",
                "tags-0-enabled": "on",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    connector = Connector.objects.get()
    assert connector.credentials == {"username": "bpmos", "password": SECRET}
    assert list(Tag.objects.values_list("connector", "tag_name", "unit")) == [
        (connector.pk, "line1.temp", "degC")
    ]
    actions = list(AuditRecord.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["scada.connector_created", "scada.tag_created"]
    assert SECRET not in json.dumps(
        list(AuditRecord.objects.values_list("before", "after"))
    )
    page = admin_client.get(change_url(connector)).content.decode()
    assert SECRET not in page
    assert "bpmos" not in page.split('name="new_credentials"')[1][:200]


def test_a_blank_credentials_box_keeps_them_and_clear_removes_them(admin_client):
    connector = Connector.objects.create(
        name="Line 1 PLC",
        kind="opcua",
        endpoint="opc.tcp://plc-1.plant.local:4840",
        credentials={"username": "u", "password": SECRET},
    )
    response = admin_client.post(change_url(connector), form_data(poll_interval_s="9"))
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.poll_interval_s == 9
    assert connector.credentials == {"username": "u", "password": SECRET}

    response = admin_client.post(
        change_url(connector), form_data(clear_credentials="on", poll_interval_s="9")
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.credentials == {}
    record = (
        AuditRecord.objects.filter(action="scada.connector_changed")
        .order_by("seq")
        .last()
    )
    assert record.after == {"has_credentials": False, "credentials": "(changed)"}


def test_the_form_shows_a_refused_rule_and_saves_nothing(admin_client):
    response = admin_client.post(
        reverse(ADD), form_data(endpoint="http://plc-1:4840", settings='{"x": 1}')
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["endpoint"]
    assert not Connector.objects.exists()
    assert not AuditRecord.objects.exists()


def test_an_inline_tag_that_breaks_a_rule_is_shown_and_nothing_saved(admin_client):
    connector = Connector.objects.create(
        name="Line 1 PLC", kind="opcua", endpoint="opc.tcp://plc-1.plant.local:4840"
    )
    response = admin_client.post(
        change_url(connector),
        form_data(
            **{
                "tags-TOTAL_FORMS": "1",
                "tags-0-node_id": "ns=2;s=Line1.State",
                "tags-0-tag_name": "line1.state",
                "tags-0-kind": "state",  # no machine
                "tags-0-enabled": "on",
            }
        ),
    )
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert list(formset.forms[0].errors) == ["machine"]
    assert not Tag.objects.exists()


def test_auditors_read_and_cannot_change(client, make_user):
    connector = Connector.objects.create(
        name="Line 1 PLC", kind="opcua", endpoint="opc.tcp://plc-1.plant.local:4840"
    )
    ScadaReading.objects.create(
        connector=connector, tag_name="t", timestamp=datetime.now(UTC), value=1
    )
    client.force_login(make_user("auditor"))
    assert client.get(reverse("admin:scada_connector_changelist")).status_code == 200
    assert client.get(reverse("admin:scada_scadareading_changelist")).status_code == 200
    assert client.post(change_url(connector), form_data(name="X")).status_code == 403
    assert Connector.objects.get().name == "Line 1 PLC"


def test_readings_are_read_only_even_for_admins(admin_client):
    connector = Connector.objects.create(
        name="P", kind="opcua", endpoint="opc.tcp://plc-1.plant.local:4840"
    )
    reading = ScadaReading.objects.create(
        connector=connector, tag_name="t", timestamp=datetime.now(UTC), value=1
    )
    url = reverse("admin:scada_scadareading_change", args=[reading.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'name="value"' not in page.content
    assert admin_client.get(reverse("admin:scada_scadareading_add")).status_code == 403
