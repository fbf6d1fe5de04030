"""Battery telemetry: batches stored whole or not at all (the row named),
idempotent on (passport, ts), one audit record per batch and no ledger event,
the passport's summary following the newest sample, and daily trends checked
against values worked out by hand; the routes and their roles."""

from datetime import UTC, datetime, timedelta

import pytest

from bpmos.errors import InvalidInput
from bpmos.roles import Role
from elog.models import AuditRecord
from passports import telemetry
from passports.models import Kind, Passport, PassportEvent, TelemetryReading
from tests.conftest import api_as as api
from tests.factories_passports_api import register, warehoused_pack
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0) -> str:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC).isoformat()


@pytest.fixture
def gateway(make_user):
    """A BMS gateway's service account (operator role)."""
    return make_user(Role.OPERATOR, username="bms-gw-1")


@pytest.fixture
def pack(make_user):
    return warehoused_pack(make_user(Role.SUPERVISOR), "PK-7001")


def stored(passport) -> list[tuple]:
    return list(
        TelemetryReading.objects.filter(passport=passport)
        .order_by("ts")
        .values_list("ts", "soh_percent", "soc_percent", "temperature_c")
    )


BATCH = [
    {"ts": at(8, 10), "sohPercent": 98.0, "socPercent": 80.0, "temperatureC": 25.0},
    {"ts": at(8, 11), "sohPercent": 97.5, "socPercent": 70.0, "temperatureC": 31.5},
    {"ts": at(9, 9), "socPercent": 55.0, "temperatureC": 22.0, "voltageV": 51.2},
    {"ts": at(9, 10), "sohPercent": 97.0, "currentA": -12.5},
]


def test_a_batch_is_stored_and_summarised(gateway, pack):
    ledger_before = PassportEvent.objects.filter(passport=pack).count()
    audits = AuditRecord.objects.count()
    result = telemetry.telemetry_ingest(passport_id=pack.pk, rows=BATCH, actor=gateway)
    assert result == {"accepted": 4, "duplicates": 0}
    pack.refresh_from_db()
    # Each measurement's newest value by ts (not the last row's nulls).
    assert (pack.soh_percent, pack.soc_percent, pack.temperature_c) == (
        97.0,
        55.0,
        22.0,
    )
    assert pack.telemetry_at == datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert pack.version == 4  # not a lifecycle change: no ledger event
    assert PassportEvent.objects.filter(passport=pack).count() == ledger_before
    record = AuditRecord.objects.get(action="passport.telemetry_ingested")
    assert AuditRecord.objects.count() == audits + 1
    assert record.actor_username == "bms-gw-1"
    assert record.after["accepted"] == 4
    assert record.after["summary"]["soh_percent"] == 97.0
    row = TelemetryReading.objects.get(
        passport=pack, ts=datetime(2026, 3, 9, 9, tzinfo=UTC)
    )
    assert (row.voltage_v, row.current_a, row.soh_percent) == (51.2, None, None)


def test_resending_a_batch_stores_nothing_twice(gateway, pack):
    telemetry.telemetry_ingest(passport_id=pack.pk, rows=BATCH, actor=gateway)
    first = stored(pack)
    again = telemetry.telemetry_ingest(passport_id=pack.pk, rows=BATCH, actor=gateway)
    assert again == {"accepted": 0, "duplicates": 4}
    assert stored(pack) == first
    # A batch overlapping the stored one stores only what is new.
    overlap = [*BATCH[2:], {"ts": at(9, 11), "sohPercent": 96.5}]
    assert telemetry.telemetry_ingest(
        passport_id=pack.pk, rows=overlap, actor=gateway
    ) == {
        "accepted": 1,
        "duplicates": 2,
    }
    pack.refresh_from_db()
    assert pack.soh_percent == 96.5
    assert len(stored(pack)) == 5
    # One audit record per batch, duplicates or not.
    assert AuditRecord.objects.filter(action="passport.telemetry_ingested").count() == 3


def test_an_older_batch_does_not_overwrite_the_summary(gateway, pack):
    telemetry.telemetry_ingest(passport_id=pack.pk, rows=BATCH, actor=gateway)
    late = [{"ts": at(1, 8), "sohPercent": 99.9, "socPercent": 10.0}]
    assert (
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=late, actor=gateway)[
            "accepted"
        ]
        == 1
    )
    pack.refresh_from_db()
    assert (pack.soh_percent, pack.soc_percent) == (97.0, 55.0)
    assert pack.telemetry_at == datetime(2026, 3, 9, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bad_row", "field"),
    [
        ({"ts": at(8, 12), "sohPercent": 100.5}, "sohPercent"),
        ({"ts": at(8, 12), "socPercent": -0.1}, "socPercent"),
        ({"ts": at(8, 12), "temperatureC": -40.5}, "temperatureC"),
        ({"ts": at(8, 12), "temperatureC": 125.1}, "temperatureC"),
        ({"ts": at(8, 12), "sohPercent": "97"}, "sohPercent"),
        ({"ts": at(8, 12), "sohPercent": True}, "sohPercent"),
        ({"ts": at(8, 12), "humidity": 3}, "humidity"),
        ({"sohPercent": 90}, "ts"),
        ({"ts": "2026-03-08T12:00:00", "sohPercent": 90}, "ts"),
        ({"ts": "2099-01-01T00:00:00Z", "sohPercent": 90}, "ts"),
        ({"ts": at(8, 12)}, "row"),
        ("not an object", "row"),
        # A field and its alias: one of them would be dropped unread.
        ({"ts": at(8, 12), "sohPercent": 90, "soh_percent": 91}, "soh_percent"),
    ],
)
def test_one_bad_row_refuses_the_whole_batch(gateway, pack, bad_row, field):
    audits = AuditRecord.objects.count()
    rows = [*BATCH[:2], bad_row, BATCH[3]]
    with pytest.raises(InvalidInput) as refused:
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=gateway)
    rows_named = refused.value.details["rows"]
    assert list(rows_named) == ["2"]
    assert list(rows_named["2"]) == [field]
    assert refused.value.message.startswith(f"Reading 2: {field}:")
    assert stored(pack) == []
    assert AuditRecord.objects.count() == audits
    pack.refresh_from_db()
    assert pack.telemetry_at is None


def test_the_bounds_themselves_are_accepted(gateway, pack):
    rows = [
        {"ts": at(8, 1), "sohPercent": 0, "socPercent": 100, "temperatureC": -40},
        {"ts": at(8, 2), "sohPercent": 100, "socPercent": 0, "temperatureC": 125},
    ]
    assert (
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=gateway)[
            "accepted"
        ]
        == 2
    )


def test_a_time_repeated_in_a_batch(gateway, pack):
    same = [BATCH[0], dict(BATCH[0])]
    assert telemetry.telemetry_ingest(
        passport_id=pack.pk, rows=same, actor=gateway
    ) == {
        "accepted": 1,
        "duplicates": 1,
    }
    clash = [BATCH[1], {**BATCH[1], "sohPercent": 50.0}]
    with pytest.raises(InvalidInput) as refused:
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=clash, actor=gateway)
    assert list(refused.value.details["rows"]) == ["1"]
    assert len(stored(pack)) == 1


def test_only_packs_report_telemetry(gateway, make_user):
    cell = register(make_user(Role.SUPERVISOR), "CL-7001", kind=Kind.CELL)
    with pytest.raises(telemetry.Conflict) as refused:
        telemetry.telemetry_ingest(passport_id=cell.pk, rows=BATCH, actor=gateway)
    assert refused.value.code == "telemetry_packs_only"
    assert TelemetryReading.objects.count() == 0


def test_the_summary_by_hand(gateway, pack):
    rows = [
        # 1 March: outside a 7-day window ending 10 March.
        {"ts": at(1, 12), "sohPercent": 99.0, "temperatureC": 50.0},
        # 8 March: SoH 98 and 97 -> 97.5; SoC 80 and 60 -> 70; T 20..35.
        {"ts": at(8, 6), "sohPercent": 98.0, "socPercent": 80.0, "temperatureC": 20.0},
        {"ts": at(8, 18), "sohPercent": 97.0, "socPercent": 60.0, "temperatureC": 35.0},
        # 10 March: SoH 96, 95, 94 -> 95; SoC only 40 -> 40; T 18..28.
        {"ts": at(10, 1), "sohPercent": 96.0, "temperatureC": 28.0},
        {"ts": at(10, 2), "sohPercent": 95.0, "socPercent": 40.0, "temperatureC": 18.0},
        {"ts": at(10, 3), "sohPercent": 94.0, "temperatureC": 21.0},
    ]
    telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=gateway)
    pack.refresh_from_db()
    summary = telemetry.telemetry_summary(pack, days=7, now=NOW)
    assert summary == {
        "latest": {
            "sohPercent": 94.0,
            "socPercent": 40.0,
            "temperatureC": 21.0,
            "at": datetime(2026, 3, 10, 3, tzinfo=UTC),
        },
        "readings": 6,
        "firstAt": datetime(2026, 3, 1, 12, tzinfo=UTC),
        "lastAt": datetime(2026, 3, 10, 3, tzinfo=UTC),
        "days": 7,
        "daily": [
            {
                "day": "2026-03-08",
                "readings": 2,
                "sohAvg": 97.5,
                "socAvg": 70.0,
                "temperatureMin": 20.0,
                "temperatureMax": 35.0,
            },
            {
                "day": "2026-03-10",
                "readings": 3,
                "sohAvg": 95.0,
                "socAvg": 40.0,
                "temperatureMin": 18.0,
                "temperatureMax": 28.0,
            },
        ],
        "sohChange": -2.5,
    }
    # Ten days back the 1 March sample is in, and the trend starts there.
    wide = telemetry.telemetry_summary(pack, days=10, now=NOW)
    assert [d["day"] for d in wide["daily"]] == [
        "2026-03-01",
        "2026-03-08",
        "2026-03-10",
    ]
    assert wide["sohChange"] == -4.0
    one_day = telemetry.telemetry_summary(pack, days=1, now=NOW)
    assert one_day["sohChange"] is None


# --- over the API ---------------------------------------------------------------------


def test_post_and_get_over_the_api(gateway, pack, make_user):
    client = api(gateway)
    response = client.post("/api/passports/PK-7001/telemetry", BATCH, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {
        "accepted": 4,
        "duplicates": 0,
        "latest": {
            "sohPercent": 97.0,
            "socPercent": 55.0,
            "temperatureC": 22.0,
            "at": "2026-03-09T10:00:00Z",
        },
    }
    again = client.post("/api/passports/PK-7001/telemetry", BATCH, format="json")
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 4)
    one = client.post(
        "/api/passports/PK-7001/telemetry",
        {"ts": at(9, 12), "temperatureC": 30.0},
        format="json",
    )
    assert one.status_code == 201
    assert one.json()["latest"]["temperatureC"] == 30.0
    # SoH is restricted: the gateway posts, it does not read.
    assert_envelope(
        client.get("/api/passports/PK-7001/telemetry"), 403, "permission_denied"
    )
    summary = api(make_user(Role.SUPERVISOR)).get(
        "/api/passports/PK-7001/telemetry?days=365"
    )
    assert summary.status_code == 200
    body = summary.json()
    assert set(body) == {
        "latest",
        "readings",
        "firstAt",
        "lastAt",
        "days",
        "daily",
        "sohChange",
    }
    assert (body["readings"], body["days"]) == (5, 365)
    assert body["firstAt"] == "2026-03-08T10:00:00Z"
    assert [d["day"] for d in body["daily"]] == ["2026-03-08", "2026-03-09"]
    assert body["daily"][0] == {
        "day": "2026-03-08",
        "readings": 2,
        "sohAvg": 97.75,
        "socAvg": 75.0,
        "temperatureMin": 25.0,
        "temperatureMax": 31.5,
    }
    detail = api(make_user(Role.AUDITOR)).get("/api/passports/PK-7001").json()
    assert detail["stateOfHealth"]["sohPercent"] == 97.0
    assert detail["telemetry"]["readings"] == 5


def test_api_refusals(gateway, pack, make_user):
    client = api(gateway)
    audits = AuditRecord.objects.count()
    bad = client.post(
        "/api/passports/PK-7001/telemetry",
        [BATCH[0], {"ts": at(8, 12), "socPercent": 101}],
        format="json",
    )
    body = assert_envelope(bad, 400, "validation_error")
    assert body["details"] == {
        "rows": {"1": {"socPercent": ["Must be between 0 and 100."]}}
    }
    assert stored(pack) == []
    assert AuditRecord.objects.count() == audits
    empty = client.post("/api/passports/PK-7001/telemetry", [], format="json")
    assert_envelope(empty, 400, "validation_error")
    missing = client.post("/api/passports/NOPE/telemetry", BATCH, format="json")
    assert_envelope(missing, 404, "not_found")
    auditor = api(make_user(Role.AUDITOR))
    assert_envelope(
        auditor.post("/api/passports/PK-7001/telemetry", BATCH, format="json"),
        403,
        "permission_denied",
    )
    for days in ("0", "366", "x"):
        response = auditor.get(f"/api/passports/PK-7001/telemetry?days={days}")
        assert list(assert_envelope(response, 400, "validation_error")["details"]) == [
            "days"
        ]


def test_a_large_batch_in_one_go(gateway, pack):
    start = datetime(2026, 2, 1, tzinfo=UTC)
    rows = [
        {
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "sohPercent": 99.0 - i / 10_000,
            "socPercent": float(i % 100),
            "temperatureC": 20.0 + (i % 10),
        }
        for i in range(5_000)
    ]
    assert (
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=gateway)[
            "accepted"
        ]
        == 5_000
    )
    # Re-sent with 10 new samples: the duplicates path stores only those.
    more = rows[-100:] + [
        {"ts": (start + timedelta(minutes=5_000 + i)).isoformat(), "sohPercent": 98.0}
        for i in range(10)
    ]
    assert telemetry.telemetry_ingest(
        passport_id=pack.pk, rows=more, actor=gateway
    ) == {
        "accepted": 10,
        "duplicates": 100,
    }
    assert Passport.objects.get(pk=pack.pk).soh_percent == 98.0
    assert TelemetryReading.objects.filter(passport=pack).count() == 5_010
