"""Every text a client sends fits the column it lands in (docs/testing.md,
"texts longer than their column"): a text past its column was a 500 on
PostgreSQL ("value too long for type character varying(N)"), which SQLite,
not enforcing lengths, never showed.

Two walks:

* Static, on every API operation drf-spectacular documents (its endpoint
  enumerator and each view's request serializer): every writable text field,
  nested and in lists too, states a ``max_length`` (the schema's
  ``maxLength``), or is listed in ``UNBOUNDED`` with the reason it needs none.
  Where a ``ModelSerializer`` maps the field onto a column, its length is at
  most the column's.
* Through the HTTP API (on PostgreSQL it is the database that judges): each
  text that a service writes into a column (from a plain serializer, from a
  JSON object's key, from a nested object) sent one character past its
  longest is a 400 in the envelope naming the field, with nothing written or
  audited; at its longest it is taken and stored. This catches a service that
  copies a bounded text into a shorter column, which no static walk sees.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework import serializers

from tests.conftest import PASSWORD, api_as
from tests.support import assert_envelope

# Writable texts with no length, and why none is needed: none reaches a
# column as it was sent (a lookup reads it, a check compares it, or a JSON
# column keeps it). (serializer class, field; "[]" for a list's items.)
UNBOUNDED: dict[tuple[str, str], str] = {
    ("RefreshSerializer", "refresh"): "a token, verified, never stored",
    ("EventRecordSerializer", "password"): "checked against the hash, not stored",
    ("SignRequestSerializer", "password"): "checked against the hash, not stored",
    ("BpanValidateSerializer", "bpan"): "checked, not stored",
    ("EventBatchItemSerializer", "passport"): "an identifier looked up",
    ("GrantIssueSerializer", "passport"): "an identifier looked up",
    ("ComponentsSerializer", "components[]"): "identifiers looked up",
    # Registration and second life: a BPAN is checked whole (21 characters)
    # and its parts cut to their length by ``passports.bpan.issue``; a GTIN
    # is 8-14 digits (``passports.gs1``); the lists are JSON columns.
    **{
        (serializer, field): "checked by its own rule, or kept in a JSON column"
        for serializer in ("PassportRegisterSerializer", "SecondLifeSerializer")
        for field in (
            "bpan",
            "gtin",
            "manufacturerCode",
            "plantCode",
            "bpanSerial",
            "criticalRawMaterials[]",
            "hazardousSubstances[]",
            "sparePartSources[]",
        )
    },
}


def _request_serializers():
    """(operation, serializer instance) for every documented write."""
    generator = SchemaGenerator()
    enumerator = EndpointEnumerator(generator.patterns, generator.urlconf)
    for path, _, method, callback in enumerator.get_api_endpoints():
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view = generator.create_view(callback, method)
        found = view.schema.get_request_serializer()
        # One serializer, or one per media type (the LIMS CSV's multipart form).
        for each in found.values() if isinstance(found, dict) else [found]:
            if isinstance(each, type) and issubclass(each, serializers.BaseSerializer):
                each = each()
            if isinstance(each, serializers.BaseSerializer):
                yield f"{method} {path}", each


def _texts(serializer, where: str = ""):
    """(where, serializer, field name, field, column or None) for each
    writable text field of ``serializer``, its nested serializers and lists."""
    if isinstance(serializer, serializers.ListSerializer):
        yield from _texts(serializer.child, where + "[]")
        return
    model = None
    if isinstance(serializer, serializers.ModelSerializer):
        model = serializer.Meta.model
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.BaseSerializer):
            yield from _texts(field, f"{where}.{name}")
            continue
        key = name
        if isinstance(field, serializers.ListField | serializers.DictField):
            field, key = (
                field.child,
                name + ("[]" if isinstance(field, serializers.ListField) else "{}"),
            )
            if isinstance(field, serializers.BaseSerializer):
                yield from _texts(field, f"{where}.{key}")
                continue
        if not isinstance(field, serializers.CharField):
            continue  # a choice, a number, a time: not free text
        column = None
        if model is not None and field.source and "." not in field.source:
            try:
                column = model._meta.get_field(field.source)
            except FieldDoesNotExist:  # a property or method as the source
                column = None
        yield where, serializer, key, field, column


def _all_texts():
    for operation, serializer in _request_serializers():
        for where, owner, key, field, column in _texts(serializer):
            yield operation + where, owner, key, field, column


def test_every_request_text_states_its_length():
    """A writable text with no ``max_length`` is a text of any length that a
    later change may copy into a column: each states one, or says why it
    needs none (``UNBOUNDED``)."""
    missing, seen = [], set()
    for where, owner, key, field, _ in _all_texts():
        name = (type(owner).__name__, key)
        seen.add(name)
        if field.max_length is None and name not in UNBOUNDED:
            missing.append(f"{where} {name}")
    assert missing == [], "texts with no max_length:\n" + "\n".join(sorted(missing))
    assert set(UNBOUNDED) <= seen, f"stale UNBOUNDED entries: {set(UNBOUNDED) - seen}"


def test_a_model_serializers_text_fits_its_column():
    """Where a request serializer maps a text onto a column, its length is at
    most the column's (and then the schema's ``maxLength`` says so)."""
    checked, wrong = 0, []
    for where, owner, key, field, column in _all_texts():
        if not isinstance(column, models.CharField) or column.max_length is None:
            continue
        checked += 1
        if field.max_length is None or field.max_length > column.max_length:
            wrong.append(
                f"{where} {type(owner).__name__}.{key}: {field.max_length} > {column}"
            )
    assert wrong == [], "\n".join(wrong)


def _schema_lengths(schema: dict) -> dict[tuple[str, str], int | None]:
    """(operation, property path) -> the ``maxLength`` the document states,
    for every string of every request body."""
    components = schema["components"]["schemas"]

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return node

    found: dict[tuple[str, str], int | None] = {}

    def walk(node: dict, operation: str, where: str) -> None:
        node = resolve(node)
        if "allOf" in node:  # an enum's component with the field's own keywords
            found[(operation, where)] = node.get("maxLength")
            return
        variants = node.get("anyOf") or node.get("oneOf")
        if variants:
            lengths = [resolve(v).get("maxLength") for v in variants]
            if any(resolve(v).get("type") == "string" for v in variants):
                found[(operation, where)] = max(
                    (n for n in lengths if n is not None), default=None
                )
            for variant in variants:
                if resolve(variant).get("type") in ("object", "array"):
                    walk(variant, operation, where)
            return
        kind = node.get("type")
        if kind == "object":
            for name, sub in node.get("properties", {}).items():
                walk(sub, operation, f"{where}.{name}")
        elif kind == "array":
            walk(node.get("items", {}), operation, where + "[]")
        elif kind == "string":
            found[(operation, where)] = node.get("maxLength")

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in content:
                    walk(content["schema"], f"{method.upper()} {path}", "")
    return found


def test_the_schema_states_each_texts_length(make_user, db):
    """What ``max_length`` a field has, the document says (``maxLength``):
    a client, and the fuzzer, see the bound the server holds."""
    response = api_as(make_user("admin")).get("/api/schema/", {"format": "json"})
    stated = _schema_lengths(response.json())
    wrong, checked = [], 0
    for where, _, key, field, _ in _all_texts():
        if field.max_length is None:
            continue
        operation, _, nested = where.partition("/api/")
        operation = operation + "/api/" + nested.split(".", 1)[0].split("[", 1)[0]
        path = where[len(operation) :] + "." + key.removesuffix("{}")
        operation = operation.replace("{pk}", "{id}")
        if key.endswith("{}"):
            continue  # a map's values: additionalProperties, not walked here
        checked += 1
        if stated.get((operation, path.replace(".[]", "[]"))) != field.max_length:
            found = stated.get((operation, path))
            wrong.append(f"{operation} {path}: {found} != {field.max_length}")
    assert checked > 100
    assert wrong == [], "\n".join(wrong)


# --- through the HTTP API: the longest text is stored, one more is a 400 ---


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


def _issue(ctx) -> str:
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

EMAIL_DOMAIN = "@" + ".".join(["d" * 63] * 3) + ".in"  # 196 characters


# A text with a form of its own, of the length asked for.
FORMED = {
    "email": lambda n: "e" * (n - len(EMAIL_DOMAIN)) + EMAIL_DOMAIN,
    "endpoint": lambda n: "opc.tcp://h:4840/" + "q" * (n - len("opc.tcp://h:4840/")),
    "node_id": lambda n: "ns=2;s=" + "q" * (n - len("ns=2;s=")),
}


def _text(field: str, length: int) -> str:
    return FORMED.get(field, "q".__mul__)(length)


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


def _columns_holding(text: str) -> set[str]:
    """Every text column of every model that holds ``text``."""
    from django.apps import apps

    found = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField):
                continue
            if model._default_manager.filter(
                **{f"{field.name}__contains": text}
            ).exists():
                found.add(f"{model._meta.label}.{field.name}")
    return found


def _audit_count() -> int:
    from elog.models import AuditPending, AuditRecord

    return AuditRecord.objects.count() + AuditPending.objects.count()


def _keys(details, prefix: str = ""):
    """Every key of a (nested) error ``details``, dotted."""
    if isinstance(details, dict):
        for key, value in details.items():
            yield f"{prefix}{key}"
            yield from _keys(value, f"{prefix}{key}.")
    elif isinstance(details, list):
        for index, value in enumerate(details):
            yield from _keys(value, f"{prefix}{index}.")


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
        _filled(copy.deepcopy(body), objects), field, _text(field, longest + 1)
    )
    taken = _put(_filled(copy.deepcopy(body), objects), field, _text(field, longest))
    client = api_as(probe_context["admin"])
    audited = _audit_count()

    response = getattr(client, method)(path, refused, format="json")
    error = assert_envelope(response, 400, "validation_error")
    named = ERROR_NAMES.get(name, field.rsplit(".", 1)[-1].removeprefix("[0]"))
    assert any(key.endswith(named) for key in _keys(error["details"])), error
    assert _columns_holding(_text(field, longest + 1)) == set()
    assert _audit_count() == audited, "a refused request wrote an audit record"

    response = getattr(client, method)(path, taken, format="json")
    assert response.status_code in (200, 201), response.content
    if not json_only:
        assert _columns_holding(_text(field, longest)), f"{name}: stored in no column"


# Bounded texts no probe needs: nothing stores them as sent (serializer
# class, field).
NOT_STORED: dict[tuple[str, str], str] = {
    **{
        (serializer, "password"): "checked against the hash, or hashed"
        for serializer in (
            "LoginSerializer",
            "RegisterSerializer",
            "GateActionSerializer",
        )
    },
    ("LoginSerializer", "username"): "looked up",
    ("ExportSerializer", "schema"): "a CSV layout looked up",
    ("ReturnBuildSerializer", "fy"): "parsed to a period",
    ("ItemMoveSerializer", "locationId"): "a location looked up",
    ("ShiftLogWriteSerializer", "plant_id"): "this plant's id, compared",
    ("ShiftLogWriteSerializer", "line"): "a line looked up",
    ("WorkOrderCreateSerializer", "runbook"): "a runbook looked up",
    ("LifecycleActionInSerializer", "action"): "one of three actions",
    ("ConnectorWriteSerializer", "credentials{}"): "kept in a JSON column",
    **{
        (serializer, field): "a product or job looked up"
        for serializer in ("MoveToPastInSerializer", "LifecycleActionInSerializer")
        for field in ("productId", "jobId")
    },
}


def test_every_stored_text_is_probed():
    """The walk and the probes together: every bounded text of every write
    is probed past its column (``PROBES``, registration's and second life's
    tests), or is not stored as sent (``NOT_STORED``) or unbounded
    (``UNBOUNDED``). A new text in a plain serializer fails here until it is
    probed or said to be neither."""
    probed_at = set()
    for spec, _ in PROBES.values():
        method, url, field, *_ = spec.split()
        probed_at.add((method.upper(), re.sub(r"{[^}]*}", "{}", url), field))
    walked, probed = [], set()
    for where, owner, key, _, _ in _all_texts():
        method, _, rest = where.partition(" ")
        path, inner = re.fullmatch(r"(.*/)(.*)", rest).groups()
        leaf = f"{inner.lstrip('.')}.{key}" if inner else key
        name = (type(owner).__name__, key)
        walked.append((name, where))
        if (
            method,
            re.sub(r"{[^}]*}", "{}", path),
            leaf.replace("[]", "[0]"),
        ) in probed_at:
            probed.add(name)
    generated = {
        (serializer, key)
        for serializer, texts in (
            ("PassportRegisterSerializer", _register_texts()),
            ("SecondLifeSerializer", _second_life_texts()),
        )
        for key, _ in texts
    }
    covered = probed | generated | set(NOT_STORED) | set(UNBOUNDED)
    missing = sorted(
        {f"{where} {name}" for name, where in walked if name not in covered}
    )
    assert missing == [], "texts neither probed nor said unstored:\n" + "\n".join(
        missing
    )
    assert set(NOT_STORED) <= {name for name, _ in walked}


# --- what the walk found, each kept as a plain test ---


@pytest.mark.parametrize(
    ("state", "kind", "field"),
    [("reserved", "dispatched", "carrier"), ("dispatched", "delivered", "customer")],
)
def test_a_custodians_name_past_its_column_is_a_400_not_a_500(
    make_user, state, kind, field
):
    """``POST /api/passports/{id}/events/`` with a dispatched event's
    ``carrier`` (a delivered one's ``customer``) of 121-300 characters: 500 on
    PostgreSQL, "value too long for type character varying(120)": the event's
    texts were held to 300, and the carrier becomes the custodian's name
    (``custodian_name``, 120). Both are now held to that column, in one
    request and in a batch."""
    from passports.models import Passport, PassportEvent
    from tests.factories_passports import make_passport

    admin = make_user("admin", username="ada")
    client = api_as(admin)
    pack = make_passport("pack", state, actor=admin)
    before = (_audit_count(), PassportEvent.objects.count())
    response = client.post(
        f"/api/passports/{pack.serial}/events/",
        {"kind": kind, "data": {field: "C" * 121}},
        format="json",
    )
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {f"data.{field}": ["At most 120 characters."]}
    response = client.post(
        "/api/passports/events/batch/",
        {
            "events": [
                {"passport": pack.serial, "kind": kind, "data": {field: "C" * 121}}
            ]
        },
        format="json",
    )
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {f"events[0].data.{field}": ["At most 120 characters."]}
    assert (_audit_count(), PassportEvent.objects.count()) == before
    again = Passport.objects.get(pk=pack.pk)
    assert (again.version, again.custodian_name) == (pack.version, pack.custodian_name)

    response = client.post(
        f"/api/passports/{pack.serial}/events/",
        {"kind": kind, "data": {field: "C" * 120}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert Passport.objects.get(pk=pack.pk).custodian_name == "C" * 120


def test_a_users_email_past_its_column_is_a_400_not_a_500(make_user):
    """``POST /api/auth/register/`` with an email of 255-320 characters (valid
    by Django's validator, which stops at 320): 500 on PostgreSQL, the column
    holds 254. The field is held to the column, and the schema says so."""
    from bpmos.accounts.models import User

    client = api_as(make_user("admin", username="ada"))
    users = User.objects.count()
    audited = _audit_count()
    body = {**USER, "username": "long-mail", "email": _text("email", 255)}
    response = client.post("/api/auth/register/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {
        "email": ["Ensure this field has no more than 254 characters."]
    }
    assert (User.objects.count(), _audit_count()) == (users, audited)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    register = schema["components"]["schemas"]["RegisterRequest"]
    assert register["properties"]["email"]["maxLength"] == 254


def test_a_lims_csvs_texts_are_held_to_their_columns(make_user):
    """``POST /api/lims/import`` (multipart): each cell that lands in a column
    (``serial``, ``test_name``, ``key``) one character past its column is a
    rejected row naming it, nothing stored; at its longest, a failed result
    is stored (the result's row and the passport's QA event)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from scada import quality
    from scada.models import LimsResult
    from tests.factories_passports import register

    serial = "S" * quality.MAX_SERIAL
    register("pack", serial=serial, manufactured_at="2026-01-05T08:00:00Z")
    client = api_as(make_user("supervisor", username="sam"))

    def upload(test_name: str, key: str, serial: str = serial):
        content = (
            "serial,test_name,result,tested_at,key\n"
            f"{serial},{test_name},fail,2026-03-01T10:00:00Z,{key}\n"
        ).encode()
        return client.post(
            "/api/lims/import",
            {"file": SimpleUploadedFile("r.csv", content, content_type="text/csv")},
            format="multipart",
        )

    audited = _audit_count()
    name, key = "T" * quality.MAX_TEST_NAME, "K" * quality.MAX_KEY
    for cells, problem in (
        ((name + "T", key), f"test_name: at most {quality.MAX_TEST_NAME} characters."),
        ((name, key + "K"), f"key: a text of at most {quality.MAX_KEY} characters."),
        (
            (name, key, serial + "S"),
            f"serial: at most {quality.MAX_SERIAL} characters.",
        ),
    ):
        error = assert_envelope(upload(*cells), 400, "no_valid_rows")
        assert [row["error"] for row in error["details"]["rejected"]] == [problem]
    assert not LimsResult.objects.exists()
    assert _audit_count() == audited

    response = upload(name, key)
    assert response.status_code == 200, response.content
    stored = LimsResult.objects.get()
    assert (stored.serial, stored.test_name, stored.key) == (serial, name, key)
    assert LimsResult._meta.get_field("test_name").max_length >= quality.MAX_TEST_NAME
    assert LimsResult._meta.get_field("key").max_length >= quality.MAX_KEY


def _bounded_texts(serializer_class) -> list[tuple[str, int]]:
    """(field, max_length) of every bounded text ``serializer_class`` takes."""
    return [
        (key, field.max_length)
        for _, _, key, field, _ in _texts(serializer_class())
        if field.max_length is not None
    ]


def _text_for(field: str, length: int) -> str:
    if field in LINKS:  # an http(s) address of that length
        return "https://e.in/" + "q" * (length - len("https://e.in/"))
    return "Q" * length


def _register_texts():
    from passports.api.serializers import PassportRegisterSerializer

    return _bounded_texts(PassportRegisterSerializer)


def _second_life_texts():
    from passports.api.serializers import SecondLifeSerializer

    return _bounded_texts(SecondLifeSerializer)


@pytest.mark.parametrize(("field", "longest"), _register_texts())
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
        "/api/passports/", {**body, field: _text_for(field, longest + 1)}, format="json"
    )
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [field], error
    assert Passport.objects.count() == passports
    assert _columns_holding(_text_for(field, longest + 1)) == set()

    response = client.post(
        "/api/passports/", {**body, field: _text_for(field, longest)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert _columns_holding(_text_for(field, longest)), f"{field}: in no column"


@pytest.mark.parametrize(("field", "longest"), _second_life_texts())
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
    passports, audited = Passport.objects.count(), _audit_count()
    response = client.post(
        url, {**SECOND, field: _text_for(field, longest + 1)}, format="json"
    )
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [field], error
    assert (Passport.objects.count(), _audit_count()) == (passports, audited)
    assert _columns_holding(_text_for(field, longest + 1)) == set()

    response = client.post(
        url, {**SECOND, field: _text_for(field, longest)}, format="json"
    )
    assert response.status_code == 201, response.content
    if field != "note":  # kept in the ledger's data
        assert _columns_holding(_text_for(field, longest)), f"{field}: in no column"


# Registration's texts that are links (``passports.attributes.is_url``).
LINKS = {
    "lifetimeReferenceTest",
    "carbonFootprintStudy",
    "dismantlingInformation",
    "safetyMeasures",
    "endOfLifeInformation",
    "declarationOfConformity",
    "testReport",
    "dueDiligenceReport",
    "thirdPartyAssurances",
}


def test_a_connectors_long_name_fits_the_alarm_area_it_becomes(make_user):
    """A connector's name (up to 100 characters, ``POST /api/scada/
    connectors/``) is the area of its communication-loss alarm and of the
    alarms of its tags that have no area or machine; the area column holds 64,
    so a connector named with 65-100 characters made the collector's
    comm-loss alarm fail on PostgreSQL ("value too long", no alarm raised).
    The area is the name cut to the column."""
    from scada import alarms
    from scada.models import AlarmEvent, AlarmHistory, Tag

    client = api_as(make_user("admin", username="ada"))
    name = "N" * 100
    response = client.post(
        "/api/scada/connectors/",
        {"name": name, "kind": "opcua", "endpoint": "opc.tcp://h:4840"},
        format="json",
    )
    assert response.status_code == 201, response.content
    connector_id = response.json()["id"]
    response = client.post(
        "/api/scada/tags/",
        {"connector": connector_id, "node_id": "ns=2;s=T", "tag_name": "t-long"},
        format="json",
    )
    assert response.status_code == 201, response.content
    area = AlarmEvent._meta.get_field("area").max_length

    alarm = alarms.comm_loss_raise(connector_id=connector_id, error="timed out")
    assert AlarmEvent.objects.get(pk=alarm.pk).area == name[:area]
    assert set(
        AlarmHistory.objects.filter(alarm=alarm).values_list("area", flat=True)
    ) == {name[:area]}
    tag = Tag.objects.select_related("connector").get(pk=response.json()["id"])
    assert alarms.area_of(tag) == name[:area]


@pytest.mark.parametrize(
    "field",
    sorted(
        key
        for serializer, key in UNBOUNDED
        if serializer == "PassportRegisterSerializer"
    ),
)
def test_a_registrations_unbounded_text_is_never_a_500(make_user, field):
    """Registration's texts with no length (``UNBOUNDED``: a BPAN and its
    parts, a GTIN, the lists) sent 1,000 characters long: refused by their own
    rule or cut to their column, never a 500."""
    from tests.factories_passports_api import REGISTER_BODY

    client = api_as(make_user("admin", username="ada"))
    text = "7" * 1000 if field == "gtin" else "A" * 1000
    value = [text] if field.endswith("[]") else text
    body = {**REGISTER_BODY, "serial": "PK-LEN-2", field.removesuffix("[]"): value}
    response = client.post("/api/passports/", body, format="json")
    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert_envelope(response, 400, response.json()["code"])
