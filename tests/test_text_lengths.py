"""Every text a client sends fits the column it lands in (docs/testing.md,
"texts longer than their column"): a text past its column was a 500 on
PostgreSQL ("value too long for type character varying(N)"), which SQLite,
not enforcing lengths, never showed.

The static walk (tests/support_text_lengths.py), on every API operation
drf-spectacular documents (its endpoint enumerator and each view's request
serializer): every writable text field, nested and in lists too, states a
``max_length`` (the schema's ``maxLength``), or is listed in ``UNBOUNDED``
with the reason it needs none; where a ``ModelSerializer`` maps the field
onto a column, its length is at most the column's. The probes through the
HTTP API (tests/test_text_lengths_probes.py) catch a service that copies a
bounded text into a shorter column, which no static walk sees; every bounded
text the walk finds is probed there or listed in ``NOT_STORED``. Below, what
the walk and the probes found, each kept as a plain test.
"""

from __future__ import annotations

import re

import pytest
from django.db import models

from tests.conftest import PASSWORD, api_as
from tests.support import assert_envelope
from tests.support_text_lengths import (
    UNBOUNDED,
    all_texts,
    audit_count,
    register_texts,
    second_life_texts,
    text_of,
)
from tests.test_text_lengths_probes import PROBES


def test_every_request_text_states_its_length():
    """A writable text with no ``max_length`` is a text of any length that a
    later change may copy into a column: each states one, or says why it
    needs none (``UNBOUNDED``)."""
    missing, seen = [], set()
    for where, owner, key, field, _ in all_texts():
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
    for where, owner, key, field, column in all_texts():
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
    for where, _, key, field, _ in all_texts():
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
    for where, owner, key, _, _ in all_texts():
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
            ("PassportRegisterSerializer", register_texts()),
            ("SecondLifeSerializer", second_life_texts()),
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
    before = (audit_count(), PassportEvent.objects.count())
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
    assert (audit_count(), PassportEvent.objects.count()) == before
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
    audited = audit_count()
    body = {
        "password": PASSWORD,
        "role": "operator",
        "username": "long-mail",
        "email": text_of("email", 255),
    }
    response = client.post("/api/auth/register/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {
        "email": ["Ensure this field has no more than 254 characters."]
    }
    assert (User.objects.count(), audit_count()) == (users, audited)
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

    audited = audit_count()
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
    assert audit_count() == audited

    response = upload(name, key)
    assert response.status_code == 200, response.content
    stored = LimsResult.objects.get()
    assert (stored.serial, stored.test_name, stored.key) == (serial, name, key)
    assert LimsResult._meta.get_field("test_name").max_length >= quality.MAX_TEST_NAME
    assert LimsResult._meta.get_field("key").max_length >= quality.MAX_KEY


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
