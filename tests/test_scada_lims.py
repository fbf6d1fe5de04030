"""LIMS quality results imported as CSV (POST /api/lims/import, multipart, through
the real test client): good rows become the passports' QA events, bad rows and
unknown serials are reported by line and change nothing, a re-import applies
nothing twice, a dry run changes nothing, and the role rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos.events.models import OutboxEvent
from bpmos.roles import Role
from elog.models import AuditRecord
from passports import selectors as passport_selectors
from passports.models import Passport, PassportEvent
from scada import quality
from scada.models import LimsResult
from tests.conftest import api_as as api
from tests.factories_passports import footprint, make_passport, register

pytestmark = pytest.mark.django_db

MADE = "2026-01-05T08:00:00Z"
HEADER = "serial,test_name,result,tested_at,capacity_ah,ir_mohm,operator_note\n"


def upload(client, content: bytes | str, *, name="results.csv", **extra):
    if isinstance(content, str):
        content = content.encode()
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    data.update(extra)
    return client.post("/api/lims/import", data, format="multipart")


@pytest.fixture
def boss(make_user):
    return make_user(Role.SUPERVISOR, username="sam")


@pytest.fixture
def packs(db):
    """Two packs just manufactured, serials LIMS-A and LIMS-B."""
    return (
        register("pack", serial="LIMS-A", manufactured_at=MADE),
        register("pack", serial="LIMS-B", manufactured_at=MADE),
    )


def mixed_file() -> str:
    future = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        HEADER
        + "LIMS-A,EOL capacity,PASS,2026-03-01T10:00:00Z,101.2,0.8,\n"  # line 2
        + "LIMS-B,EOL capacity,failed,2026-03-01T10:05:00+05:30,88,1.9,swollen\n"
        + "NO-SUCH,EOL capacity,pass,2026-03-01T10:00:00Z,100,0.8,\n"  # 4
        + "LIMS-A,EOL capacity,maybe,2026-03-01T11:00:00Z,100,0.8,\n"  # 5
        + f"LIMS-B,Insulation,pass,{future},,,\n"  # 6
        + "LIMS-B,Insulation,pass,2026-03-01 11:00:00,,,\n"  # 7: no time zone
        + "LIMS-B,Insulation,pass\n"  # 8: short row
        + ",Insulation,pass,2026-03-01T11:00:00Z,,,\n"  # 9: no serial
    )


MIXED_REJECTED = [
    {
        "row": 4,
        "serial": "NO-SUCH",
        "error": "Unknown serial: no passport has it.",
        "code": "unknown_serial",
    },
    {
        "row": 5,
        "serial": "LIMS-A",
        "error": "result: pass or fail (pass/fail, PASS/FAIL, passed/failed).",
        "code": "invalid",
    },
    {
        "row": 6,
        "serial": "LIMS-B",
        "error": "tested_at: cannot be in the future.",
        "code": "invalid",
    },
    {
        "row": 7,
        "serial": "LIMS-B",
        "error": "tested_at: give a time zone (Z or +05:30).",
        "code": "invalid",
    },
    {
        "row": 8,
        "serial": "LIMS-B",
        "error": "3 cells; the header has 7.",
        "code": "invalid",
    },
    {"row": 9, "serial": "", "error": "serial: required.", "code": "invalid"},
]


def ledger_of(passport: Passport) -> list[PassportEvent]:
    return list(passport_selectors.event_list(passport=passport))


# --- good and bad rows ------------------------------------------------------------


def test_good_rows_become_qa_events_and_bad_rows_are_reported(boss, packs):
    a, b = packs
    response = upload(api(boss), mixed_file())

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "applied": 2,
        "skipped": 0,
        "rejected": MIXED_REJECTED,
        "dry_run": False,
    }
    # Each good row: exactly one QA event, dated when it was tested, the test
    # and its values in the event's data; the passport's state follows.
    a_events, b_events = ledger_of(a), ledger_of(b)
    assert [e.kind for e in a_events] == ["manufactured", "qa_passed"]
    assert [e.kind for e in b_events] == ["manufactured", "qa_failed"]
    assert a_events[1].data == {
        "test": "EOL capacity",
        "values": {"capacity_ah": 101.2, "ir_mohm": 0.8},
        "note": "LIMS result",
    }
    assert b_events[1].data == {
        "test": "EOL capacity",
        "values": {"capacity_ah": 88, "ir_mohm": 1.9, "operator_note": "swollen"},
        "reason": "LIMS: EOL capacity failed",
    }
    assert a_events[1].occurred_at.isoformat() == "2026-03-01T10:00:00+00:00"
    assert b_events[1].occurred_at.isoformat() == "2026-03-01T04:35:00+00:00"
    assert a_events[1].actor_username == "sam"

    results = {r.serial: r for r in LimsResult.objects.all()}
    assert set(results) == {"LIMS-A", "LIMS-B"}
    assert results["LIMS-A"].passport_event_id == a_events[1].pk
    assert results["LIMS-B"].passport_event_id == b_events[1].pk
    assert results["LIMS-A"].values == {"capacity_ah": 101.2, "ir_mohm": 0.8}
    assert results["LIMS-B"].values == {
        "capacity_ah": 88,
        "ir_mohm": 1.9,
        "operator_note": "swollen",
    }
    assert results["LIMS-A"].passed is True
    assert results["LIMS-B"].passed is False
    assert results["LIMS-A"].source == "csv"
    assert results["LIMS-A"].key == "LIMS-A|EOL capacity|2026-03-01T10:00:00+00:00"


def test_the_passport_api_shows_the_new_state_and_ledger(boss, packs):
    upload(api(boss), mixed_file())

    client = api(boss)
    detail = client.get("/api/passports/LIMS-A").json()
    assert detail["state"] == "QA Passed"
    ledger = client.get("/api/passports/LIMS-B/ledger").json()["results"]
    assert [(e["kind"], e["occurredAt"]) for e in ledger] == [
        ("manufactured", "2026-01-05T08:00:00Z"),
        ("qa_failed", "2026-03-01T04:35:00Z"),
    ]
    assert client.get("/api/passports/LIMS-B").json()["state"] == "QA Failed"


def test_every_applied_row_is_audited_with_the_import(boss, packs):
    before = AuditRecord.objects.count()
    upload(api(boss), mixed_file(), name="lab-2026-03-01.csv")

    actions = list(
        AuditRecord.objects.order_by("seq")[before:].values_list("action", flat=True)
    )
    assert actions == [
        "passport.qa_passed",
        "lims_result.applied",
        "passport.qa_failed",
        "lims_result.applied",
        "lims_results.imported",
    ]
    applied = (
        AuditRecord.objects.filter(action="lims_result.applied").order_by("seq").first()
    )
    assert applied.actor_username == "sam"
    assert applied.after["serial"] == "LIMS-A"
    assert applied.after["event_kind"] == "qa_passed"
    assert applied.after["values"] == {"capacity_ah": 101.2, "ir_mohm": 0.8}
    summary = AuditRecord.objects.get(action="lims_results.imported")
    assert summary.after == {
        "file": "lab-2026-03-01.csv",
        "applied": 2,
        "skipped": 0,
        "rejected": 6,
        "rejected_rows": [4, 5, 6, 7, 8, 9],
    }


def test_a_reimport_applies_nothing_twice(boss, packs):
    client = api(boss)
    upload(client, mixed_file())
    versions = {p.serial: p.version for p in Passport.objects.all()}
    events = PassportEvent.objects.count()

    again = upload(client, mixed_file())

    assert again.status_code == 200
    assert again.json()["applied"] == 0
    assert again.json()["skipped"] == 2
    assert [r["row"] for r in again.json()["rejected"]] == [4, 5, 6, 7, 8, 9]
    assert PassportEvent.objects.count() == events
    assert {p.serial: p.version for p in Passport.objects.all()} == versions
    assert LimsResult.objects.count() == 2


def test_the_same_result_twice_in_one_file_is_applied_once(boss, packs):
    row = "LIMS-A,EOL capacity,pass,2026-03-01T10:00:00Z,101,0.8,\n"
    response = upload(api(boss), HEADER + row + row)

    assert response.json() == {
        "applied": 1,
        "skipped": 1,
        "rejected": [],
        "dry_run": False,
    }
    assert [e.kind for e in ledger_of(packs[0])] == ["manufactured", "qa_passed"]


def test_a_dry_run_checks_every_row_and_changes_nothing(boss, packs):
    a, b = packs
    prints = [footprint(a), footprint(b)]

    response = upload(api(boss), mixed_file(), dry_run="true")

    assert response.status_code == 200
    assert response.json() == {
        "applied": 2,
        "skipped": 0,
        "rejected": MIXED_REJECTED,
        "dry_run": True,
    }
    assert [footprint(a), footprint(b)] == prints  # ledger, audit, outbox
    assert LimsResult.objects.count() == 0


def test_the_lifecycle_refusing_a_qa_event_is_a_row_error(boss, packs):
    recycled = make_passport("pack", "recycled")
    passed = make_passport("pack", "warehoused")  # past QA: a pass is refused
    prints = [footprint(recycled), footprint(passed)]
    just_now = timezone.now().isoformat()  # they were made a moment ago
    content = (
        "serial,test_name,result,tested_at\n"
        f"{recycled.serial},Insulation,pass,{just_now}\n"
        f"{passed.serial},Insulation,pass,{just_now}\n"
        "LIMS-A,Insulation,fail,2026-03-01T10:00:00Z\n"
        "LIMS-B,Insulation,pass,2025-12-01T10:00:00Z\n"  # before it was made
    )

    response = upload(api(boss), content)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["applied"] == 1
    assert [(r["row"], r["serial"], r["code"]) for r in body["rejected"]] == [
        (2, recycled.serial, "illegal_transition"),
        (3, passed.serial, "illegal_transition"),
        (5, "LIMS-B", "validation_error"),
    ]
    assert body["rejected"][2]["error"].startswith(
        "tested_at: Cannot be before the battery was manufactured"
    )
    # Refused rows are not half-applied: no result row, no event, no audit.
    for battery, before in zip([recycled, passed], prints, strict=True):
        after = footprint(battery)
        assert (after["passport"], after["events"]) == (
            before["passport"],
            before["events"],
        )
    assert set(LimsResult.objects.values_list("serial", flat=True)) == {"LIMS-A"}
    assert not AuditRecord.objects.filter(
        action="lims_result.applied", after__serial__in=[recycled.serial, "LIMS-B"]
    ).exists()


def test_a_semicolon_file_with_a_bom_and_crlf_is_read(boss, packs):
    content = (
        "\ufeffSerial;Test Name;Result;Tested At;Voltage V\r\n"
        "LIMS-A;OCV;Passed;2026-03-02T09:00:00Z;51.3\r\n"
        "\r\n"
        "LIMS-B;OCV;FAIL;2026-03-02T09:01:00Z;49\r\n"
    ).encode()

    response = upload(api(boss), content)

    assert response.json() == {
        "applied": 2,
        "skipped": 0,
        "rejected": [],
        "dry_run": False,
    }
    assert LimsResult.objects.get(serial="LIMS-A").values == {"voltage_v": 51.3}
    assert Passport.objects.get(serial="LIMS-B").state == "qa_failed"


def test_a_key_column_is_the_results_key(boss, packs):
    content = (
        "key,serial,test_name,result,tested_at\n"
        "R-1001,LIMS-A,OCV,pass,2026-03-02T09:00:00Z\n"
    )
    upload(api(boss), content)
    assert LimsResult.objects.get().key == "R-1001"


# --- files that are refused whole -------------------------------------------------


def _unchanged(packs) -> dict:
    return {
        "prints": [footprint(p) for p in packs],
        "results": LimsResult.objects.count(),
        "audit": AuditRecord.objects.count(),
        "outbox": OutboxEvent.objects.count(),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "serial,test_name,tested_at\nLIMS-A,OCV,2026-03-02T09:00:00Z\n",
            "Missing column: result (the header needs serial, test_name, "
            "result, tested_at).",
            id="missing-column",
        ),
        pytest.param(
            "serial,test_name,result,tested_at,capacity_ah\n"
            "LIMS-A,OCV,pass,2026-03-02T09:00:00Z,10\xb5\n".encode("latin-1"),
            "Not UTF-8 text (byte 86); save it as CSV UTF-8.",
            id="not-utf8",
        ),
        pytest.param(b"", "The submitted file is empty.", id="empty"),  # DRF's
        pytest.param(b"\r\n \r\n", "The file is empty.", id="blank"),
        pytest.param(
            "serial,test_name,result,tested_at\n",
            "The file has a header but no rows.",
            id="header-only",
        ),
        pytest.param(
            "serial,test_name,result,tested_at\n"
            + "LIMS-A,OCV,pass,2026-03-02T09:00:00Z\n" * (quality.MAX_ROWS + 1),
            "At most 5000 rows per file.",
            id="too-many-rows",
        ),
        pytest.param(
            "serial,Serial,test_name,result,tested_at\n",
            "Column given twice: serial.",
            id="column-twice",
        ),
        pytest.param(
            b"serial,test_name,result,tested_at\nLIMS-A\x00,x,pass,now\n",
            "Not a text file (it holds NUL characters).",
            id="nul",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_a_400_changing_nothing(
    boss, packs, content, message
):
    before = _unchanged(packs)

    response = upload(api(boss), content)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["details"] == {"file": [message]}
    assert _unchanged(packs) == before


def test_a_file_too_large_is_refused(boss, packs):
    big = "serial,test_name,result,tested_at\n" + "x" * quality.MAX_FILE_BYTES
    response = upload(api(boss), big)
    assert response.status_code == 400
    assert response.json()["details"] == {"file": ["At most 2 MB."]}


def test_a_file_with_no_good_row_is_a_400_naming_each_row(boss, packs):
    before = _unchanged(packs)
    content = (
        "serial,test_name,result,tested_at\n"
        "NO-SUCH,OCV,pass,2026-03-02T09:00:00Z\n"
        "LIMS-A,OCV,perhaps,2026-03-02T09:00:00Z\n"
    )

    response = upload(api(boss), content)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "no_valid_rows"
    assert [(r["row"], r["code"]) for r in body["details"]["rejected"]] == [
        (2, "unknown_serial"),
        (3, "invalid"),
    ]
    assert _unchanged(packs) == before


def test_the_file_field_is_required(boss):
    response = api(boss).post("/api/lims/import", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "file" in response.json()["details"]


# --- roles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OPERATOR, 403),
        (Role.PLANNER, 403),
        (Role.AUDITOR, 403),
        (Role.SUPERVISOR, 200),
        (Role.PLANT_HEAD, 200),
        (Role.ADMIN, 200),
    ],
)
def test_supervisors_and_above_import(make_user, packs, role, status):
    content = "serial,test_name,result,tested_at\nLIMS-A,OCV,pass,2026-03-02T09:00Z\n"
    response = upload(api(make_user(role)), content)
    assert response.status_code == status
    assert LimsResult.objects.count() == (1 if status == 200 else 0)


@pytest.mark.parametrize("role", list(Role))
def test_everyone_signed_in_reads_the_results(make_user, role):
    assert api(make_user(role)).get("/api/lims/results").status_code == 200


def test_the_results_need_a_token():
    assert APIClient().get("/api/lims/results").status_code == 401


# --- the list ---------------------------------------------------------------------


def test_results_list_filters_by_serial_outcome_and_time(
    boss, packs, django_assert_num_queries
):
    upload(api(boss), mixed_file())
    client = api(boss)

    with django_assert_num_queries(3):  # the token's user, count, page
        everything = client.get("/api/lims/results").json()
    assert everything["count"] == 2
    first = everything["results"][0]
    assert set(first) == {
        "id",
        "key",
        "connector",
        "serial",
        "test_name",
        "passed",
        "values",
        "tested_at",
        "passport_event_id",
        "source",
        "created_at",
    }

    def serials(query: str) -> list[str]:
        rows = client.get("/api/lims/results" + query).json()["results"]
        return [row["serial"] for row in rows]

    assert serials("?serial=LIMS-B") == ["LIMS-B"]
    assert serials("?passed=true") == ["LIMS-A"]
    assert serials("?passed=false") == ["LIMS-B"]
    assert serials("?from=2026-03-01T06:00:00Z") == ["LIMS-A"]
    assert serials("?to=2026-03-01T06:00:00Z") == ["LIMS-B"]
    bad = client.get("/api/lims/results?from=yesterday")
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"


# --- the schema ---------------------------------------------------------------------


def test_openapi_describes_the_multipart_body(boss):
    schema = api(boss).get("/api/schema/?format=json").json()
    body = schema["paths"]["/api/lims/import/"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    ref = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][ref]["properties"]
    assert properties["file"]["format"] == "binary"
    assert properties["dry_run"]["type"] == "boolean"


def test_a_result_given_by_barcode_is_kept_under_the_serial(boss, db):
    pack = register("pack", serial="LIMS-C", barcode="BC-77", manufactured_at=MADE)
    content = "serial,test_name,result,tested_at\nbc-77,OCV,pass,2026-03-02T09:00Z\n"

    assert upload(api(boss), content).json()["applied"] == 1

    result = LimsResult.objects.get()
    assert (result.serial, result.key) == (
        "LIMS-C",
        "LIMS-C|OCV|2026-03-02T09:00:00+00:00",
    )
    assert [e.kind for e in ledger_of(pack)] == ["manufactured", "qa_passed"]


def test_a_json_body_is_a_400_naming_the_file(boss):
    response = api(boss).post("/api/lims/import", {"dry_run": True}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"file": ["No file was submitted."]}
