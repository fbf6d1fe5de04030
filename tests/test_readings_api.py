"""POST /api/machines/{id}/readings: whole batches, idempotent, refused whole.

Through the real HTTP server (``http``), so the fast JSON path, the error
envelope and the COPY path on PostgreSQL are what is exercised.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bpmos.batch import PayloadTooLarge
from bpmos.errors import InvalidInput
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from lines import services
from lines.models import Machine, MachineReading
from tests.conftest import bearer
from tests.factories_lines import (
    at,
    ingest,
    machine,
    make_line,
    reading,
    row_counts,
    state,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def line():
    return make_line()


@pytest.fixture
def weld(line):
    return machine(line, "st-02")


@pytest.fixture
def gateway(make_user):
    """The SCADA gateway's service account (an operator-role user)."""
    return bearer(make_user("operator", username="scada-gateway"))


def seconds_batch(n: int) -> list[dict]:
    """``n`` cycle-time readings a second apart from 08:00."""
    return [
        reading("cycle_time", at(8) + timedelta(seconds=i), 19.5 + i % 3, unit="s")
        for i in range(n)
    ]


def post(http, target: Machine, body, headers):
    return http.post(f"/api/machines/{target.pk}/readings", json=body, headers=headers)


def test_one_reading_object_is_stored(http, weld, gateway):
    response = post(http, weld, reading("temperature", at(8), 41.5, unit="C"), gateway)
    assert response.status_code == 201, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    stored = MachineReading.objects.get()
    assert (stored.machine_id, stored.tag, stored.ts, stored.value, stored.unit) == (
        weld.pk,
        "temperature",
        at(8),
        41.5,
        "C",
    )
    assert (stored.text, stored.note, stored.quality) == ("", "", "good")


def test_a_batch_of_thousands_is_stored_in_one_request(http, weld, gateway):
    rows = seconds_batch(5000)
    response = post(http, weld, rows, gateway)
    assert response.status_code == 201, response.text
    assert response.json() == {"accepted": 5000, "duplicates": 0}
    assert MachineReading.objects.filter(machine=weld, tag="cycle_time").count() == 5000
    assert AuditRecord.objects.filter(action="machine.readings_ingested").count() == 1


def test_resending_a_batch_stores_nothing_twice(http, weld, gateway):
    rows = seconds_batch(300)
    first = post(http, weld, rows, gateway)
    assert first.json() == {"accepted": 300, "duplicates": 0}
    again = post(http, weld, rows, gateway)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 300}
    assert MachineReading.objects.count() == 300
    # An overlapping batch stores only what is new.
    more = seconds_batch(350)
    assert post(http, weld, more, gateway).json() == {
        "accepted": 50,
        "duplicates": 300,
    }
    assert MachineReading.objects.count() == 350


def test_every_batch_is_audited_once_with_its_counts(http, weld, gateway):
    rows = seconds_batch(3)
    post(http, weld, rows, gateway)
    post(http, weld, rows, gateway)
    records = list(
        AuditRecord.objects.filter(action="machine.readings_ingested").order_by("seq")
    )
    assert [r.after["accepted"] for r in records] == [3, 0]
    assert [r.after["duplicates"] for r in records] == [0, 3]
    assert records[0].actor_username == "scada-gateway"
    assert records[0].target_type == "lines.machine"
    assert records[0].target_id == str(weld.pk)
    assert records[0].after["tags"] == ["cycle_time"]
    assert records[0].after["first_ts"] == "2026-03-02T08:00:00Z"
    assert records[0].after["last_ts"] == "2026-03-02T08:00:02Z"


def test_a_reading_repeated_within_a_batch_is_stored_once(weld):
    row = reading("good_count", at(8), 3)
    assert ingest(weld, [row, dict(row)]) == {"accepted": 1, "duplicates": 1}


def test_mobile_aliases_reading_type_and_timestamp_are_accepted(http, weld, gateway):
    body = {"reading_type": "pressure", "timestamp": "2026-03-02T09:30:00+05:30"}
    response = post(http, weld, {**body, "value": 2.5, "machine_id": weld.pk}, gateway)
    assert response.status_code == 201, response.text
    stored = MachineReading.objects.get()
    assert (stored.tag, stored.ts) == ("pressure", at(4))


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"ts": "yesterday"}, "ts", "Must be an ISO 8601 time with a time zone."),
        ({"ts": "2026-03-02T08:00:00"}, "ts", "Needs a time zone"),
        ({"ts": "2099-01-01T00:00:00Z"}, "ts", "Is in the future."),
        ({"value": "hot"}, "value", "Must be a number."),
        ({"value": True}, "value", "Must be a number."),
        ({"tag": ""}, "tag", "Required"),
        ({"quality": "great"}, "quality", "One of"),
        ({"colour": "red"}, "colour", "Unknown field."),
        ({"reading_type": "pressure"}, "reading_type", "An alias of tag"),
        ({"timestamp": "2026-03-02T08:00:00Z"}, "timestamp", "An alias of ts"),
    ],
)
def test_a_bad_row_refuses_the_whole_batch_and_names_it(
    http, weld, gateway, bad, field, message
):
    rows = seconds_batch(4)
    rows[2] = {**rows[2], **bad}
    before = row_counts()
    response = post(http, weld, rows, gateway)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "validation_error"
    assert body["error"].startswith(f"Reading 2: {field}: ")
    assert body["error"].endswith("Nothing was stored.")
    assert list(body["details"]["rows"]) == ["2"]
    assert list(body["details"]["rows"]["2"]) == [field]
    assert message in body["details"]["rows"]["2"][field][0]
    assert row_counts() == before


def test_every_bad_row_is_named(weld):
    rows = seconds_batch(5)
    rows[1]["value"] = "x"
    rows[4]["ts"] = "nope"
    with pytest.raises(InvalidInput) as refused:
        ingest(weld, rows)
    assert refused.value.details == {
        "rows": {
            "1": {"value": ["Must be a number."]},
            "4": {"ts": ["Must be an ISO 8601 time with a time zone."]},
        }
    }
    assert MachineReading.objects.count() == 0


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (reading("state", at(8), "dancing"), "value"),
        (reading("state", at(8), 1), "value"),
        (reading("good_count", at(8), -1), "value"),
        (reading("good_count", at(8), 2.5), "value"),
        (reading("reject_count", at(8), "3"), "value"),
        (reading("cycle_time", at(8), -4), "value"),
        (reading("good_count", at(8), 1, machine_id=987654), "machine_id"),
        (reading("state", at(8), "down", reason="x" * 201), "reason"),
        ("not an object", "row"),
    ],
)
def test_rules_of_known_tags(weld, row, field):
    with pytest.raises(InvalidInput) as refused:
        ingest(weld, [row])
    assert list(refused.value.details["rows"]["0"]) == [field]


def test_same_tag_and_time_with_other_values_is_refused(weld):
    rows = [reading("good_count", at(8), 3), reading("good_count", at(8), 4)]
    with pytest.raises(InvalidInput) as refused:
        ingest(weld, rows)
    assert list(refused.value.details["rows"]) == ["1"]


def test_not_json_and_empty_bodies_are_refused(http, weld, gateway):
    url = f"/api/machines/{weld.pk}/readings"
    raw = http.post(
        url, content=b"{nope", headers={**gateway, "Content-Type": "application/json"}
    )
    assert (raw.status_code, raw.json()["code"]) == (400, "parse_error")
    empty = http.post(url, json=[], headers=gateway)
    assert (empty.status_code, empty.json()["code"]) == (400, "validation_error")
    assert MachineReading.objects.count() == 0


def test_a_batch_over_the_limit_is_refused_with_413(weld, monkeypatch):
    monkeypatch.setattr(services, "MAX_BATCH", 10)
    with pytest.raises(PayloadTooLarge):
        ingest(weld, seconds_batch(11))
    assert MachineReading.objects.count() == 0


def test_unknown_machine_is_404(http, gateway):
    response = http.post(
        "/api/machines/987654/readings",
        json=reading("good_count", at(8), 1),
        headers=gateway,
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert AuditRecord.objects.count() == 0


@pytest.mark.parametrize("role", ["operator", "planner", "supervisor", "admin"])
def test_shop_floor_roles_may_post_readings(http, weld, make_user, role):
    response = post(
        http, weld, reading("good_count", at(8), 1), bearer(make_user(role))
    )
    assert response.status_code == 201


def test_auditor_may_not_post_readings(http, weld, make_user):
    response = post(
        http, weld, reading("good_count", at(8), 1), bearer(make_user("auditor"))
    )
    assert response.status_code == 403
    assert MachineReading.objects.count() == 0


# --- state readings ----------------------------------------------------------------


def test_newest_state_reading_becomes_the_machine_status(weld):
    ingest(
        weld,
        [
            state(at(8), "running"),
            state(at(9), "blocked", "Safety Curtain"),
            state(at(8, 30), "idle"),
        ],
    )
    weld.refresh_from_db()
    assert (weld.status, weld.status_reason, weld.status_since) == (
        "blocked",
        "Safety Curtain",
        at(9),
    )


def test_a_late_older_state_reading_does_not_override_the_status(weld):
    ingest(weld, [state(at(9), "running")])
    ingest(weld, [state(at(8), "down")])
    weld.refresh_from_db()
    assert (weld.status, weld.status_since) == ("running", at(9))
    assert MachineReading.objects.filter(tag="state").count() == 2


def test_bad_quality_state_readings_do_not_change_the_status(weld):
    ingest(weld, [state(at(9), "down") | {"quality": "bad"}])
    weld.refresh_from_db()
    assert (weld.status, weld.status_since) == ("idle", None)


def test_state_change_publishes_station_and_line_changes(weld, line):
    ingest(weld, [state(at(8), "running")])
    events = list(OutboxEvent.objects.order_by("id"))
    assert [(e.name, e.topics) for e in events] == [
        ("station.changed", ["lines", f"line.{line.pk}"]),
        ("line.changed", ["lines", f"line.{line.pk}"]),
    ]
    assert events[0].data == {
        "lineId": "line-a",
        "id": "st-02",
        "name": "Weld",
        "state": "Running",
        "reason": "",
        "previousState": "Idle",
        "changedAt": "2026-03-02T08:00:00Z",
    }
    assert events[1].data == {
        "id": "line-a",
        "name": "Line A (Modules)",
        "mode": "Running",
        "health": "OK",
        "previousMode": "Idle",
        "previousHealth": "OK",
        "changedAt": "2026-03-02T08:00:00Z",
    }


def test_a_block_reason_change_is_a_station_change(weld):
    ingest(weld, [state(at(8), "blocked", "Safety Curtain")])
    since = OutboxEvent.objects.latest("id").pk
    ingest(weld, [state(at(8, 5), "blocked", "Door Open")])
    new = list(OutboxEvent.objects.filter(pk__gt=since))
    assert [e.name for e in new] == ["station.changed"]  # the line stays Blocked
    assert (new[0].data["state"], new[0].data["reason"]) == ("Blocked", "Door Open")


def test_the_same_state_again_publishes_nothing(weld):
    ingest(weld, [state(at(8), "running")])
    before = OutboxEvent.objects.count()
    ingest(weld, [state(at(8, 5), "running"), reading("good_count", at(8, 6), 2)])
    assert OutboxEvent.objects.count() == before
    weld.refresh_from_db()
    assert weld.status_since == at(8, 5)


def test_only_the_net_change_of_a_batch_is_published(weld):
    ingest(
        weld,
        [state(at(8), "running"), state(at(8, 1), "down"), state(at(8, 2), "idle")],
    )
    assert not OutboxEvent.objects.exists()  # idle -> ... -> idle
    assert MachineReading.objects.filter(tag="state").count() == 3


def test_the_readings_route_is_the_first_api_route_tried_and_keeps_its_name():
    from django.urls import get_resolver, resolve, reverse

    match = resolve("/api/machines/12/readings/")
    assert (match.view_name, match.kwargs) == ("api:machine-readings", {"pk": "12"})
    assert reverse("api:machine-readings", kwargs={"pk": 12}) == (
        "/api/machines/12/readings"
    )
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    first = api.url_patterns[0]
    assert [p.name for p in first.url_patterns] == ["machine-readings"]
    # The other machine routes are where they were.
    assert resolve("/api/machines/12").view_name == "api:machine-detail"
    assert resolve("/api/machines").view_name == "api:machine-list"
