"""Every text a service writes into a column, through the HTTP API on the
demo plant (docs/testing.md, "texts longer than their column"): one character
past its longest is a 400 in the envelope naming it, nothing written or
audited; at its longest it is taken and stored. On PostgreSQL it is the
database that judges: a service that copies a bounded text into a shorter
column, which no static walk sees, was a 500 there ("value too long for type
character varying(N)"). tests/test_text_lengths.py ties these probes to its
walk: every bounded text is probed here or said not to be stored."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD, api_as
from tests.support import assert_envelope
from tests.support_text_lengths import (
    audit_count,
    columns_holding,
    error_keys,
    register_texts,
    second_life_texts,
    text_for,
    text_of,
)

pytestmark = pytest.mark.django_db


def _alarm(ctx) -> int:
    from scada.models import AlarmEvent, Tag

    tag = Tag.objects.select_related("connector").order_by("id").first()
    return AlarmEvent.objects.create(
        timestamp=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        tag=tag,
        connector=tag.connector,
        tag_name=tag.tag_name,
        status="unack_active",
        message="probe high",
    ).pk


def _issue(ctx) -> int:
    from exceptions import services as exception_services

    stage = ctx["objects"]["stage"]
    issue = exception_services.stage_issue_raise(
        stage_id=stage, type="quality_failure", description="Probe.", actor=ctx["admin"]
    )
    return issue.pk


def _first(model_path: str, key: str = "id", **filters):
    from django.apps import apps

    model = apps.get_model(model_path)
    found = model.objects.filter(**filters).order_by("id").values_list(key, flat=True)
    assert found, f"the demo plant has no {model_path} {filters}"
    return found[0]


def _pack(state: str):
    def make(ctx) -> str:
        from tests.factories_passports import make_passport

        return make_passport("pack", state).serial

    return make


def _handover(ctx) -> int:
    from elog import shiftlog

    # Written in the shift before this one: a handover is acknowledged in the
    # shift that follows it.
    entry = shiftlog.entry_write(
        now=timezone.now() - timedelta(hours=8),
        actor=ctx["other"],
        plant_id="main",
        operator_id=ctx["other"].pk,
        operator_name="Other",
        entry_type="handover",
        body="Line A handed over.",
    )
    return entry.pk


# What a probe's URL and body name in braces, made when first asked for
# (a pack in a state is made anew for each probe that needs one).
OBJECTS = {
    "alarm": _alarm,
    "tag": lambda ctx: _first("scada.Tag"),
    "rule": lambda ctx: _first("scada.AlertRule"),
    "connector": lambda ctx: _first("scada.Connector"),
    "gate": lambda ctx: _first("runbooks.Gate", status="open"),
    "item": lambda ctx: _first(
        "inventory.Item", "code", status="good", quantity__gte=5
    ),
    "location": lambda ctx: _first("inventory.Location", "code"),
    "reservation": lambda ctx: _first("inventory.Reservation", status="active"),
    "exception": lambda ctx: _first("exceptions.PlantException", status="open"),
    "stage": lambda ctx: _first(
        "runbooks.WorkOrderStage",
        status="in_progress",
        work_order__status="in_progress",
    ),
    "planned": lambda ctx: _first("runbooks.WorkOrder", status="planned"),
    "machine": lambda ctx: _first("lines.Machine"),
    "handover": _handover,
    "issue": _issue,
    "me": lambda ctx: ctx["admin"].pk,
    "warehoused": _pack("warehoused"),
    "reserved": _pack("reserved"),
    "dispatched": _pack("dispatched"),
    "end_of_life": _pack("end_of_life"),
}

WO = {
    "qty": 1,
    "planned_start": "2026-12-06T08:00:00Z",
    "planned_end": "2026-12-07T08:00:00Z",
}
LOG = {"plant_id": "main", "operator_id": "{me}", "entry_type": "note", "body": "b"}
MWO = {"asset_id": "A1", "asset_name": "n", "description": "d", "priority": "high"}
READING = {"tag": "T1", "ts": "2026-12-05T06:00:00Z", "value": 1}
TAG = {"connector": "{connector}"}
USER = {"password": PASSWORD, "role": "operator"}
SECOND = {
    "status": "repurposed",
    "serial": "SL-1",
    "operator": "Second Life Storage",
    "manufacturerCode": "SLS",
    "plantCode": "2",
    "batteryCategory": "Stationary",
}


def _without(body: dict, key: str) -> dict:
    return {k: v for k, v in body.items() if k != key}


# id: ("method url field longest [json]", body). The field is set to a text
# of its longest and of one more: "a.b" is a nested key, "[0].c" a list's
# first row; "json" where only the ledger's or the audit's JSON keeps it, no
# text column.
PROBES = {
    "alarm-shelve": ("post /api/alarms/{alarm}/shelve/ reason 200", {"minutes": 10}),
    "alarm-suppress": ("post /api/alarms/{alarm}/suppress/ reason 200", {}),
    "alarm-oos": ("post /api/alarms/{alarm}/out-of-service/ reason 200", {}),
    "rule-name": (
        "post /api/alerts/rules/ name 100",
        {"tag": "{tag}", "high_limit": 5},
    ),
    "rule-message": (
        "post /api/alerts/rules/ message 200",
        {"tag": "{tag}", "high_limit": 5, "name": "n"},
    ),
    "rule-patch-name": ("patch /api/alerts/rules/{rule}/ name 100", {}),
    "rule-patch-message": ("patch /api/alerts/rules/{rule}/ message 200", {}),
    "register-username": ("post /api/auth/register/ username 150", USER),
    "register-first-name": (
        "post /api/auth/register/ first_name 150",
        {**USER, "username": "u1"},
    ),
    "register-last-name": (
        "post /api/auth/register/ last_name 150",
        {**USER, "username": "u2"},
    ),
    "register-email": (
        "post /api/auth/register/ email 254",
        {**USER, "username": "u3"},
    ),
    "return-note": ("post /api/compliance/returns/ note 300", {"fy": "2025-26"}),
    "gate-lock": ("post /api/gates/{gate}/lock/ reason 300", {}),
    "item-hold": ("post /api/inventory/items/{item}/hold/ reason 300", {}),
    "item-block": ("post /api/inventory/items/{item}/block/ reason 300", {}),
    "item-issue": (
        "post /api/inventory/items/{item}/issue/ reason 300",
        {"quantity": 1},
    ),
    "item-move": (
        "post /api/inventory/items/{item}/move/ reason 300",
        {"locationId": "{location}"},
    ),
    "item-reserve": (
        "post /api/inventory/items/{item}/reserve/ dispatchRef 64",
        {"quantity": 1},
    ),
    "reservation-release": (
        "post /api/inventory/reservations/{reservation}/release/ reason 300 json",
        {},
    ),
    "log-write-body": (
        "post /api/logs/write/ body 4000",
        {**LOG, "operator_name": "o"},
    ),
    # The entry keeps the token's user's name, not the one sent.
    "log-write-operator": ("post /api/logs/write/ operator_name 150 json", LOG),
    "log-acknowledge": ("post /api/logs/shift/{handover}/acknowledge/ body 4000", {}),
    "exception-resolve": (
        "post /api/exceptions/{exception}/resolve/ resolutionNote 4000",
        {},
    ),
    "stage-hold": ("post /api/stages/{stage}/hold/ reason 300", {}),
    "issue-resolve": (
        "patch /api/stages/{stage}/issues/{issue}/ resolution_note 5000",
        {"status": "resolved"},
    ),
    "stage-issue": (
        "post /api/stages/{stage}/issue/ description 5000",
        {"type": "quality_failure"},
    ),
    "work-order-cancel": ("post /api/workorders/{planned}/cancel/ reason 300 json", {}),
    "work-order-product": (
        "post /api/workorders/ product_code 64",
        {**WO, "lot_no": "L1"},
    ),
    "work-order-lot": ("post /api/workorders/ lot_no 64", {**WO, "product_code": "P1"}),
    "maintenance-asset-id": (
        "post /api/work-orders/create/ asset_id 64",
        _without(MWO, "asset_id"),
    ),
    "maintenance-asset-name": (
        "post /api/work-orders/create/ asset_name 200",
        _without(MWO, "asset_name"),
    ),
    "maintenance-description": (
        "post /api/work-orders/create/ description 4000",
        _without(MWO, "description"),
    ),
    "maintenance-system": ("post /api/work-orders/create/ created_by_system 64", MWO),
    "maintenance-assignee": ("post /api/work-orders/create/ assignee 100", MWO),
    "connector-name": (
        "post /api/scada/connectors/ name 100",
        {"kind": "opcua", "endpoint": "opc.tcp://h:4840"},
    ),
    "connector-endpoint": (
        "post /api/scada/connectors/ endpoint 500",
        {"kind": "opcua", "name": "c-long"},
    ),
    "tag-node": ("post /api/scada/tags/ node_id 500", {**TAG, "tag_name": "T-X0"}),
    "tag-name": ("post /api/scada/tags/ tag_name 64", {**TAG, "node_id": "ns=2;s=X"}),
    "tag-unit": (
        "post /api/scada/tags/ unit 16",
        {**TAG, "node_id": "ns=2;s=Y", "tag_name": "T-X2"},
    ),
    "tag-area": (
        "post /api/scada/tags/ area 64",
        {**TAG, "node_id": "ns=2;s=Z", "tag_name": "T-X3"},
    ),
    "reading-tag": (
        "post /api/machines/{machine}/readings/ [0].tag 64",
        [_without(READING, "tag")],
    ),
    "reading-type": (
        "post /api/machines/{machine}/readings/ [0].reading_type 64",
        [_without(READING, "tag")],
    ),
    "reading-unit": ("post /api/machines/{machine}/readings/ [0].unit 16", [READING]),
    "reading-reason": (
        "post /api/machines/{machine}/readings/ [0].reason 200",
        [READING],
    ),
    "desk-reason": (
        "post /api/products/move-to-past/ reason 300",
        {"productId": "{warehoused}"},
    ),
    "desk-live-reason": (
        "post /api/live-products/dispatchable/ reason 300",
        {"productId": "{warehoused}"},
    ),
    "desk-lifecycle-reason": (
        "post /api/products/lifecycle/ reason 300",
        {"productId": "{warehoused}", "action": "move_to_past"},
    ),
    "desk-carrier": (
        "post /api/products/move-to-past/ carrier 120",
        {"productId": "{reserved}", "reason": "dispatched"},
    ),
    "desk-lifecycle-carrier": (
        "post /api/products/lifecycle/ carrier 120",
        {"productId": "{reserved}", "action": "move_to_past", "reason": "dispatched"},
    ),
    "grant-party": ("post /api/passports/grants/ party 120", {"customer": "c"}),
    "grant-customer": ("post /api/passports/grants/ customer 120", {"party": "p"}),
    "event-held": (
        "post /api/passports/{warehoused}/events/ data.reason 300",
        {"kind": "held"},
    ),
    "event-dispatched": (
        "post /api/passports/{reserved}/events/ data.carrier 120",
        {"kind": "dispatched"},
    ),
    "event-delivered": (
        "post /api/passports/{dispatched}/events/ data.customer 120",
        {"kind": "delivered"},
    ),
    "event-batch-carrier": (
        "post /api/passports/events/batch/ events[0].data.carrier 120",
        {"events": [{"passport": "{reserved}", "kind": "dispatched"}]},
    ),
    "custody-name": (
        "post /api/passports/{end_of_life}/custody/ to.name 120",
        {"to": {"kind": "recycler"}},
    ),
    "custody-reference": (
        "post /api/passports/{end_of_life}/custody/ reference 120 json",
        {"to": {"kind": "recycler", "name": "R"}},
    ),
}

# The name the 400 gives where it is not the field's own: an alias.
ERROR_NAMES = {"reading-type": "tag"}


class _Objects(dict):
    """The objects a probe names, made when first named."""

    def __init__(self, ctx: dict):
        super().__init__()
        self.ctx = {**ctx, "objects": self}

    def __missing__(self, key: str):
        self[key] = OBJECTS[key](self.ctx)
        return self[key]


def _filled(value, objects: _Objects):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return objects[value[1:-1]]
    if isinstance(value, dict):
        return {k: _filled(v, objects) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, objects) for v in value]
    return value


def _put(body, field: str, text: str):
    """``body`` with ``text`` at ``field`` ("a.b", "[0].c", "events[0].data.x")."""
    node = body
    parts = field.replace("[", ".[").strip(".").split(".")
    for part in parts[:-1]:
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = text
    return body


@pytest.fixture
def probe_context(demo_plant, make_user):
    return {
        "admin": make_user("admin", username="ada"),
        "other": make_user("supervisor", username="sam"),
    }


@pytest.mark.parametrize("name", list(PROBES))
def test_a_text_past_its_column_is_a_400_and_at_its_longest_is_stored(
    probe_context, name
):
    """On the demo plant, as admin: one character more than the longest is a
    400 naming the field, nothing in any text column, no audit record; the
    longest is taken and lands in a column (a probe that only 404s or 409s
    would prove nothing)."""
    spec, body = PROBES[name]
    method, url, field, longest, *json_only = spec.split()
    longest = int(longest)
    objects = _Objects(probe_context)
    path = url.format_map(objects)
    refused = _put(
        _filled(copy.deepcopy(body), objects), field, text_of(field, longest + 1)
    )
    taken = _put(_filled(copy.deepcopy(body), objects), field, text_of(field, longest))
    client = api_as(probe_context["admin"])
    audited = audit_count()

    response = getattr(client, method)(path, refused, format="json")
    error = assert_envelope(response, 400, "validation_error")
    named = ERROR_NAMES.get(name, field.rsplit(".", 1)[-1].removeprefix("[0]"))
    assert any(key.endswith(named) for key in error_keys(error["details"])), error
    assert columns_holding(text_of(field, longest + 1)) == set()
    assert audit_count() == audited, "a refused request wrote an audit record"

    response = getattr(client, method)(path, taken, format="json")
    assert response.status_code in (200, 201), response.content
    if not json_only:
        assert columns_holding(text_of(field, longest)), f"{name}: stored in no column"


@pytest.mark.parametrize(("field", "longest"), register_texts())
def test_a_registrations_text_past_its_column_is_a_400_and_at_its_longest_is_stored(
    make_user, field, longest
):
    """``POST /api/passports/``, every bounded text (the campaign of
    2026-12-05 found ``carbonFootprintClass``; here each of them): one more
    than its longest is a 400 naming it and no passport; its longest is
    registered and kept in a column (a link as an http(s) address)."""
    from passports.models import Passport
    from tests.factories_passports_api import REGISTER_BODY

    client = api_as(make_user("admin", username="ada"))
    body = {**REGISTER_BODY, "serial": "PK-LEN-1"}
    passports = Passport.objects.count()
    response = client.post(
        "/api/passports/", {**body, field: text_for(field, longest + 1)}, format="json"
    )
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [field], error
    assert Passport.objects.count() == passports
    assert columns_holding(text_for(field, longest + 1)) == set()

    response = client.post(
        "/api/passports/", {**body, field: text_for(field, longest)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert columns_holding(text_for(field, longest)), f"{field}: in no column"


@pytest.mark.parametrize(("field", "longest"), second_life_texts())
def test_a_second_lifes_text_past_its_column_is_a_400_and_at_its_longest_is_stored(
    make_user, field, longest
):
    """``POST /api/passports/{id}/second-life/``, every bounded text, as for
    registration: the new passport takes them (the note only the ledger)."""
    from passports.models import Passport
    from tests.factories_passports import make_passport

    admin = make_user("admin", username="ada")
    client = api_as(admin)
    old = make_passport("pack", "in_service", actor=admin)
    url = f"/api/passports/{old.serial}/second-life/"
    passports, audited = Passport.objects.count(), audit_count()
    response = client.post(
        url, {**SECOND, field: text_for(field, longest + 1)}, format="json"
    )
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [field], error
    assert (Passport.objects.count(), audit_count()) == (passports, audited)
    assert columns_holding(text_for(field, longest + 1)) == set()

    response = client.post(
        url, {**SECOND, field: text_for(field, longest)}, format="json"
    )
    assert response.status_code == 201, response.content
    if field != "note":  # kept in the ledger's data
        assert columns_holding(text_for(field, longest)), f"{field}: in no column"
