"""The dispatch desk over HTTP (dispatch contract): the shapes key by key, only
shippable products listed, moves and their refusals (which change nothing),
the legacy endpoint, the dashboard's numbers, and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from lines.models import Machine, MachineState
from passports import ledger
from passports.dispatch import services as dispatch
from passports.dispatch.api import tickets
from passports.models import EventKind, JobState, Passport, PassportEvent
from tests import factories_lines
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.dispatch_support import footprint, latest_job, make_pack, record

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}
PRODUCT_KEYS = {
    "productId",
    "jobId",
    "serial",
    "bpan",
    "kind",
    "model",
    "lot",
    "state",
    "currentState",
    "isDispatchable",
    "location",
    "updatedAt",
}
LIFECYCLE_KEYS = {
    "productId",
    "passportId",
    "jobId",
    "currentState",
    "isDispatchable",
    "serial",
    "bpan",
    "kind",
    "model",
    "lot",
    "state",
    "onHold",
    "holdReason",
    "custodian",
    "version",
    "stages",
    "jobs",
    "transitions",
    "updatedAt",
}
TRANSITION_KEYS = {"from", "to", "reason", "at", "by", "jobId", "event"}


def iso(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def sam(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def desk(sam):
    """One pack in each situation the desk meets."""
    packs = {
        "live": make_pack(sam, "PK-001"),
        "reserved": make_pack(sam, "PK-002", until="reserved"),
        "held": make_pack(sam, "PK-003", until="held"),
        "qa_failed": make_pack(sam, "PK-004", until="qa_failed"),
        "not_warehoused": make_pack(sam, "PK-005", until="provisioned"),
        "past": make_pack(sam, "PK-006"),
        "dispatched": make_pack(sam, "PK-007", until="dispatched"),
    }
    dispatch.product_move_to_past(
        passport_id=packs["past"].pk, reason="damaged in storage", actor=sam
    )
    return {name: Passport.objects.get(pk=p.pk) for name, p in packs.items()}


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["success"] is False
    assert body["code"] == code
    return body


# --- GET /api/live-products/dispatchable ----------------------------------------


def test_dispatchable_lists_only_live_shippable_products(desk, make_user):
    response = api(make_user("auditor")).get("/api/live-products/dispatchable")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "products", "count"}
    assert body["success"] is True
    assert body["count"] == 2
    first, second = body["products"]
    live, reserved = desk["live"], desk["reserved"]
    assert first == {
        "productId": "PK-001",
        "jobId": str(latest_job(live).pk),
        "serial": "PK-001",
        "bpan": None,
        "kind": "Pack",
        "model": "BP-48V-100",
        "lot": "LOT-7",
        "state": "Warehoused",
        "currentState": "ON",
        "isDispatchable": True,
        "location": "WH-A / Rack 3",
        "updatedAt": iso(live.updated_at),
    }
    assert set(second) == PRODUCT_KEYS
    assert (second["productId"], second["state"], second["jobId"]) == (
        "PK-002",
        "Reserved",
        str(latest_job(reserved).pk),
    )


def test_dispatchable_query_count_is_pinned(desk, sam, django_assert_num_queries):
    client = api(sam)
    with django_assert_num_queries(2):  # the caller, the list
        response = client.get("/api/live-products/dispatchable/")
    assert response.json()["count"] == 2
    for n in range(8, 12):
        make_pack(sam, f"PK-0{n:02d}")
    with django_assert_num_queries(2):
        response = client.get("/api/live-products/dispatchable/")
    assert response.json()["count"] == 6


def test_location_is_left_out_when_none_was_recorded(sam):
    make_pack(sam, "PK-100", location="")
    (product,) = api(sam).get("/api/live-products/dispatchable").json()["products"]
    assert set(product) == PRODUCT_KEYS - {"location"}


# --- POST /api/live-products/dispatchable ---------------------------------------


def test_dispatch_moves_product_to_past_and_ships_it(desk, sam):
    live = desk["live"]
    job = latest_job(live)
    outbox_before = OutboxEvent.objects.latest("pk").pk
    response = api(sam).post(
        "/api/live-products/dispatchable",
        {"productId": "PK-001", "jobId": str(job.pk), "carrier": "BlueDart"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"success", "lifecycle"}
    lifecycle = body["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["isDispatchable"]) == ("OFF", False)
    assert (lifecycle["state"], lifecycle["jobId"]) == ("Dispatched", str(job.pk))
    assert lifecycle["custodian"] == {"kind": "logistics", "name": "BlueDart"}
    job.refresh_from_db()
    assert (job.state, job.reason) == (JobState.OFF, "dispatched")
    last = PassportEvent.objects.filter(passport=live).latest("version")
    assert (last.kind, last.data, last.actor_username) == (
        EventKind.DISPATCHED,
        {"carrier": "BlueDart"},
        "sam",
    )
    sent = list(OutboxEvent.objects.filter(pk__gt=outbox_before).order_by("pk"))
    moved = [e for e in sent if e.name == "product_moved_to_past"]
    update = [e for e in sent if e.name == "dispatchable_products_update"]
    assert len(moved) == 1
    assert moved[0].topics == ["dispatch"]
    assert {k: v for k, v in moved[0].data.items() if k != "movedAt"} == {
        "productId": "PK-001",
        "jobId": str(job.pk),
        "reason": "dispatched",
        "currentState": "OFF",
    }
    assert update[-1].data == {
        "productId": "PK-001",
        "isDispatchable": False,
        "count": 1,
    }
    listed = api(sam).get("/api/live-products/dispatchable").json()
    assert [p["productId"] for p in listed["products"]] == ["PK-002"]


def test_default_carrier_is_logistics(desk, sam):
    response = api(sam).post(
        "/api/live-products/dispatchable", {"productId": "PK-002"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["lifecycle"]["custodian"] == {
        "kind": "logistics",
        "name": "Logistics",
    }


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("held", 409, "on_hold"),
        ("qa_failed", 409, "illegal_transition"),
        ("past", 409, "already_past"),
        ("dispatched", 409, "already_past"),
        ("not_warehoused", 404, "job_not_found"),
    ],
)
def test_dispatch_refusals_change_nothing(desk, sam, name, status, code):
    passport = desk[name]
    before = footprint(passport)
    response = api(sam).post(
        "/api/live-products/dispatchable",
        {"productId": passport.serial},
        format="json",
    )
    assert_envelope(response, status, code)
    assert footprint(passport) == before


def test_unknown_product_is_404(desk, sam):
    response = api(sam).post(
        "/api/live-products/dispatchable", {"productId": "NOPE-9"}, format="json"
    )
    body = assert_envelope(response, 404, "product_not_found")
    assert body["error"] == "Product NOPE-9 not found."


def test_missing_product_id_is_400(desk, sam):
    response = api(sam).post("/api/live-products/dispatchable", {}, format="json")
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"productId": ["This field is required."]}


def test_stale_job_is_409_and_unknown_job_404(desk, sam):
    passport = desk["past"]
    old = latest_job(passport)
    dispatch.product_reactivate(passport_id=passport.pk, actor=sam)
    dispatch.product_move_to_past(passport_id=passport.pk, reason="recount", actor=sam)
    # The same job turned ON and OFF again: it stays the latest.
    assert latest_job(passport).pk == old.pk
    live = desk["live"]
    before = footprint(live)
    response = api(sam).post(
        "/api/products/lifecycle",
        {"productId": "PK-001", "jobId": "999999", "action": "move_to_past"},
        format="json",
    )
    assert_envelope(response, 404, "job_not_found")
    response = api(sam).post(
        "/api/products/lifecycle",
        {"productId": "PK-001", "jobId": str(old.pk), "action": "move_to_past"},
        format="json",
    )
    assert_envelope(response, 404, "job_not_found")  # another product's job
    assert footprint(live) == before


def test_older_job_of_the_same_product_is_409_stale(sam):
    pack = make_pack(sam, "PK-200")
    first = latest_job(pack)
    dispatch.product_move_to_past(passport_id=pack.pk, reason="recount", actor=sam)
    # Re-tested, re-provisioned and warehoused again while past: a new job opens.
    record(sam, pack, EventKind.QA_FAILED, reason="Re-test after a drop")
    record(sam, pack, EventKind.QA_PASSED, test="EOL-2")
    ledger.append(
        passport=pack.pk, kind=EventKind.PROVISIONED, data={"node": 5}, actor=sam
    )
    record(sam, pack, EventKind.WAREHOUSED, location="WH-B")
    second = latest_job(pack)
    assert second.pk != first.pk
    response = api(sam).post(
        "/api/products/lifecycle",
        {"productId": "PK-200", "jobId": str(first.pk), "action": "move_to_past"},
        format="json",
    )
    body = assert_envelope(response, 409, "stale_job")
    assert body["details"] == {"jobId": str(first.pk), "latestJobId": str(second.pk)}


# --- GET/POST /api/products/lifecycle --------------------------------------------


def test_lifecycle_shape_key_by_key(desk, make_user):
    past = desk["past"]
    job = latest_job(past)
    response = api(make_user("operator")).get(
        "/api/products/lifecycle", {"productId": "PK-006"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "lifecycle"}
    assert body["success"] is True
    lifecycle = body["lifecycle"]
    assert set(lifecycle) == LIFECYCLE_KEYS
    events = list(PassportEvent.objects.filter(passport=past).order_by("version"))
    assert {k: v for k, v in lifecycle.items() if k not in {"stages", "jobs"}} == {
        "productId": "PK-006",
        "passportId": str(past.uuid),
        "jobId": str(job.pk),
        "currentState": "OFF",
        "isDispatchable": False,
        "serial": "PK-006",
        "bpan": None,
        "kind": "Pack",
        "model": "BP-48V-100",
        "lot": "LOT-7",
        "state": "Warehoused",
        "onHold": False,
        "holdReason": "",
        "custodian": {"kind": "manufacturer", "name": "Acme Batteries"},
        "version": 5,
        "transitions": [
            {
                "from": "ON",
                "to": "OFF",
                "reason": "damaged in storage",
                "at": iso(events[4].occurred_at),
                "by": "sam",
                "jobId": str(job.pk),
                "event": "moved_to_past",
            }
        ],
        "updatedAt": iso(past.updated_at),
    }
    assert [s["stage"] for s in lifecycle["stages"]] == [
        "manufactured",
        "qa_passed",
        "provisioned",
        "warehoused",
        "moved_to_past",
    ]
    assert lifecycle["stages"][3] == {
        "stage": "warehoused",
        "label": "Warehoused",
        "timestamp": iso(events[3].occurred_at),
        "version": 4,
        "by": "sam",
        "data": {"location": "WH-A / Rack 3"},
    }
    assert lifecycle["jobs"] == [
        {
            "jobId": str(job.pk),
            "state": "OFF",
            "reason": "damaged in storage",
            "createdAt": iso(job.created_at),
            "updatedAt": iso(job.updated_at),
        }
    ]


def test_lifecycle_before_the_warehouse_has_no_desk_state(desk, sam):
    lifecycle = (
        api(sam)
        .get("/api/products/lifecycle", {"productId": "PK-005"})
        .json()["lifecycle"]
    )
    assert (lifecycle["currentState"], lifecycle["jobId"]) == (None, None)
    assert (lifecycle["isDispatchable"], lifecycle["state"]) == (False, "Provisioned")
    assert (lifecycle["jobs"], lifecycle["transitions"]) == ([], [])


def test_held_product_stays_live_but_is_not_dispatchable(desk, sam):
    """A hold keeps the product on the desk (ON) but not dispatchable, in the
    lifecycle and the list alike, until it is released."""
    client = api(sam)
    lifecycle = client.get("/api/products/lifecycle", {"productId": "PK-003"}).json()[
        "lifecycle"
    ]
    assert {k: lifecycle[k] for k in ("currentState", "isDispatchable")} == {
        "currentState": "ON",
        "isDispatchable": False,
    }
    assert (lifecycle["state"], lifecycle["onHold"], lifecycle["holdReason"]) == (
        "Warehoused",
        True,
        "Swollen cell suspected",
    )
    listed = client.get("/api/live-products/dispatchable").json()["products"]
    assert [p["productId"] for p in listed] == ["PK-001", "PK-002"]

    record(sam, desk["held"], EventKind.RELEASED, note="Re-inspected")
    lifecycle = client.get("/api/products/lifecycle", {"productId": "PK-003"}).json()[
        "lifecycle"
    ]
    assert (lifecycle["currentState"], lifecycle["isDispatchable"]) == ("ON", True)
    listed = client.get("/api/live-products/dispatchable").json()["products"]
    assert [p["productId"] for p in listed] == ["PK-001", "PK-002", "PK-003"]


def test_lifecycle_finds_product_by_uuid_too(desk, sam):
    response = api(sam).get(
        "/api/products/lifecycle", {"productId": str(desk["live"].uuid)}
    )
    lifecycle = response.json()["lifecycle"]
    assert (lifecycle["productId"], lifecycle["currentState"]) == ("PK-001", "ON")
    assert lifecycle["isDispatchable"] is True


def test_lifecycle_get_needs_a_known_product_id(desk, sam):
    body = assert_envelope(
        api(sam).get("/api/products/lifecycle"), 400, "validation_error"
    )
    assert body["details"] == {"productId": ["This query parameter is required."]}
    body = assert_envelope(
        api(sam).get("/api/products/lifecycle?productId=PK-404"),
        404,
        "product_not_found",
    )
    assert body["error"] == "Product PK-404 not found."


def test_lifecycle_move_to_past_with_a_reason_only_takes_it_off_the_desk(desk, sam):
    live = desk["live"]
    job = latest_job(live)
    response = api(sam).post(
        "/api/products/lifecycle",
        {
            "productId": "PK-001",
            "jobId": str(job.pk),
            "action": "move_to_past",
            "reason": "customer cancelled",
        },
        format="json",
    )
    assert response.status_code == 200
    lifecycle = response.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["state"]) == ("OFF", "Warehoused")
    assert lifecycle["custodian"]["kind"] == "manufacturer"
    assert lifecycle["stages"][-1]["stage"] == "moved_to_past"
    assert lifecycle["stages"][-1]["data"] == {
        "jobId": str(job.pk),
        "reason": "customer cancelled",
    }
    assert lifecycle["transitions"][-1]["reason"] == "customer cancelled"


def test_reactivate_puts_a_past_product_back_on_the_desk(desk, sam):
    past = desk["past"]
    job = latest_job(past)
    response = api(sam).post(
        "/api/products/lifecycle",
        {
            "productId": "PK-006",
            "jobId": job.pk,  # a number works as well as a string
            "action": "reactivate",
            "reason": "repaired",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    lifecycle = response.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["isDispatchable"]) == ("ON", True)
    assert [(t["from"], t["to"], t["reason"]) for t in lifecycle["transitions"]] == [
        ("ON", "OFF", "damaged in storage"),
        ("OFF", "ON", "repaired"),
    ]
    event = OutboxEvent.objects.filter(name="product_reactivated").latest("pk")
    assert {k: v for k, v in event.data.items() if k != "reactivatedAt"} == {
        "productId": "PK-006",
        "jobId": str(job.pk),
        "currentState": "ON",
    }
    listed = api(sam).get("/api/live-products/dispatchable").json()["products"]
    assert [p["productId"] for p in listed] == ["PK-001", "PK-002", "PK-006"]


@pytest.mark.parametrize(
    ("name", "code"),
    [("dispatched", "illegal_transition"), ("live", "already_live")],
)
def test_reactivate_refusals_change_nothing(desk, sam, name, code):
    passport = desk[name]
    before = footprint(passport)
    response = api(sam).post(
        "/api/products/lifecycle",
        {"productId": passport.serial, "action": "reactivate"},
        format="json",
    )
    assert_envelope(response, 409, code)
    assert footprint(passport) == before


@pytest.mark.parametrize(
    "body",
    [{"action": "reactivate"}, {"action": "update_state", "state": "ON"}],
)
def test_reactivate_refuses_a_held_product_and_changes_nothing(desk, sam, body):
    past = desk["past"]
    record(sam, past, EventKind.HELD, reason="Swollen cell suspected")
    before = footprint(past)
    response = api(sam).post(
        "/api/products/lifecycle", {"productId": "PK-006", **body}, format="json"
    )
    error = assert_envelope(response, 409, "on_hold")
    assert error["error"] == (
        "Pack PK-006 is on hold (Swollen cell suspected); release the hold first."
    )
    assert error["details"] == {"state": "warehoused", "onHold": True}
    assert footprint(past) == before  # no ledger event, audit row or stream event

    record(sam, past, EventKind.RELEASED)
    response = api(sam).post(
        "/api/products/lifecycle", {"productId": "PK-006", **body}, format="json"
    )
    assert response.status_code == 200, response.content
    lifecycle = response.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["isDispatchable"]) == ("ON", True)


def test_update_state_off_then_on(desk, sam):
    client = api(sam)
    off = client.post(
        "/api/products/lifecycle",
        {"productId": "PK-002", "action": "update_state", "state": "OFF"},
        format="json",
    )
    assert off.status_code == 200
    lifecycle = off.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["state"]) == ("OFF", "Reserved")
    assert lifecycle["transitions"][-1]["reason"] == "moved to past"
    on = client.post(
        "/api/products/lifecycle",
        {"productId": "PK-002", "action": "update_state", "state": "ON"},
        format="json",
    )
    assert on.status_code == 200
    lifecycle = on.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["isDispatchable"]) == ("ON", True)
    assert lifecycle["transitions"][-1]["reason"] == "reactivated"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"productId": "PK-001", "action": "update_state"}, "state"),
        ({"productId": "PK-001", "action": "update_state", "state": "MAYBE"}, "state"),
        # a state outside the contract's two is refused whatever the action
        # (it was ignored by move_to_past and reactivate: the fuzz's find)
        ({"productId": "PK-001", "action": "move_to_past", "state": "X"}, "state"),
        ({"productId": "PK-001", "action": "reactivate", "state": "on"}, "state"),
        ({"productId": "PK-001", "action": "ship_it"}, "action"),
        ({"productId": "PK-001"}, "action"),
        ({"action": "reactivate"}, "productId"),
        (
            {"productId": "PK-001", "action": "move_to_past", "carrier": ["x"]},
            "carrier",
        ),
        (
            {"productId": "PK-001", "action": "move_to_past", "reason": "x" * 301},
            "reason",
        ),
        ({"productId": "PK-001", "action": "move_to_past", "reason": "   "}, "reason"),
    ],
)
def test_lifecycle_post_bad_input_is_400_and_changes_nothing(desk, sam, body, field):
    before = footprint(desk["live"])
    response = api(sam).post("/api/products/lifecycle", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [field]
    assert footprint(desk["live"]) == before


def test_unknown_action_names_the_actions(desk, sam):
    response = api(sam).post(
        "/api/products/lifecycle",
        {"productId": "PK-001", "action": "ship_it"},
        format="json",
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["error"] == "Unknown action 'ship_it'."
    assert body["details"] == {
        "action": ["One of move_to_past, reactivate, update_state."]
    }


# --- legacy /api/products/move-to-past -------------------------------------------


def test_legacy_move_to_past_uses_the_same_service(desk, sam):
    response = api(sam).post(
        "/api/products/move-to-past/",
        {"productId": "PK-001", "reason": "dispatched", "carrier": "DHL"},
        format="json",
    )
    assert response.status_code == 200
    lifecycle = response.json()["lifecycle"]
    assert (lifecycle["currentState"], lifecycle["state"]) == ("OFF", "Dispatched")
    assert lifecycle["custodian"] == {"kind": "logistics", "name": "DHL"}

    before = footprint(desk["held"])
    refused = api(sam).post(
        "/api/products/move-to-past", {"productId": "PK-003"}, format="json"
    )
    assert_envelope(refused, 409, "on_hold")
    assert footprint(desk["held"]) == before


def test_legacy_history_lists_every_transition(desk, sam):
    past = desk["past"]
    job = latest_job(past)
    dispatch.product_reactivate(passport_id=past.pk, reason="repaired", actor=sam)
    dispatch.product_move_to_past(passport_id=past.pk, carrier="BlueDart", actor=sam)
    response = api(sam).get("/api/products/move-to-past", {"productId": "PK-006"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "productId", "transitions"}
    assert (body["success"], body["productId"]) == (True, "PK-006")
    events = {
        e.kind: e
        for e in PassportEvent.objects.filter(
            passport=past,
            kind__in=["moved_to_past", "reactivated", "dispatched"],
        )
    }
    assert body["transitions"] == [
        {
            "from": "ON",
            "to": "OFF",
            "reason": "damaged in storage",
            "at": iso(events["moved_to_past"].occurred_at),
            "by": "sam",
            "jobId": str(job.pk),
            "event": "moved_to_past",
        },
        {
            "from": "OFF",
            "to": "ON",
            "reason": "repaired",
            "at": iso(events["reactivated"].occurred_at),
            "by": "sam",
            "jobId": str(job.pk),
            "event": "reactivated",
        },
        {
            "from": "ON",
            "to": "OFF",
            "reason": "dispatched",
            "at": iso(events["dispatched"].occurred_at),
            "by": "sam",
            "jobId": str(job.pk),
            "event": "dispatched",
            "carrier": "BlueDart",
        },
    ]


def test_legacy_history_needs_a_product_id(desk, sam):
    assert_envelope(api(sam).get("/api/products/move-to-past"), 400, "validation_error")
    assert_envelope(
        api(sam).get("/api/products/move-to-past?productId=X-1"),
        404,
        "product_not_found",
    )


# --- roles ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_only_supervisors_move_products(desk, make_user, role):
    before = footprint(desk["live"])
    client = api(make_user(role))
    for path, body in [
        ("/api/live-products/dispatchable", {"productId": "PK-001"}),
        ("/api/products/lifecycle", {"productId": "PK-001", "action": "move_to_past"}),
        ("/api/products/move-to-past", {"productId": "PK-001"}),
    ]:
        assert_envelope(
            client.post(path, body, format="json"), 403, "permission_denied"
        )
    assert footprint(desk["live"]) == before


@pytest.mark.parametrize("role", ["plant-head", "admin"])
def test_plant_heads_and_admins_dispatch(desk, make_user, role):
    response = api(make_user(role)).post(
        "/api/live-products/dispatchable", {"productId": "PK-001"}, format="json"
    )
    assert response.status_code == 200


def test_reads_need_a_token(desk):
    for path in (
        "/api/live-products/dispatchable",
        "/api/products/lifecycle?productId=PK-001",
        "/api/products/move-to-past?productId=PK-001",
        "/api/dashboard/status",
    ):
        assert_envelope(api().get(path), 401, "not_authenticated")


# --- dashboard -----------------------------------------------------------------


@pytest.fixture
def midday():
    """The clock at noon, ticking on, from before the desk is made: "today's"
    counts then hold every move. On the real clock, a desk made at 23:59:59.9
    and read after midnight counted none of them."""
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=True):
        yield


def test_dashboard_status_numbers(midday, desk, make_user):
    line = factories_lines.make_line(
        stations=(("st-01", "Cell Load", "10"), ("st-02", "Weld", "20"))
    )
    Machine.objects.filter(code="line-a-st-01-m1").update(status=MachineState.RUNNING)
    Machine.objects.filter(code="line-a-st-02-m1").update(status=MachineState.DOWN)
    Machine.objects.create(
        station=line.stations.get(slug="st-02"),
        code="line-a-st-02-m2",
        name="Retired welder",
        machine_type="weld",
        status=MachineState.RUNNING,
        is_active=False,
    )
    response = api(make_user("auditor")).get("/api/dashboard/status")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "products", "machines", "statistics", "timestamp"}
    assert body["success"] is True
    assert body["products"] == {
        "total": 7,
        "live": 4,  # PK-001..004: the held and the QA-failed pack are still ON
        "past": 2,
        "dispatchable": 2,
        "onHold": 1,
        "byState": {
            "Manufactured": 0,
            "QA Passed": 0,
            "QA Failed": 1,
            "Provisioned": 1,
            "Assembled": 0,
            "Warehoused": 3,
            "Reserved": 1,
            "Dispatched": 1,
            "In Service": 0,
            "End of Life": 0,
            "Recycled": 0,
            "Superseded": 0,
        },
    }
    assert body["machines"] == {
        "total": 2,
        "byState": {
            "Running": 1,
            "Ready": 0,
            "Idle": 0,
            "Blocked": 0,
            "Maintenance": 0,
            "Down": 1,
        },
    }
    shipped = PassportEvent.objects.get(passport=desk["dispatched"], kind="dispatched")
    stats = body["statistics"]
    assert {k: v for k, v in stats.items() if k != "since"} == {
        "dispatchedToday": 1,
        "movedToPastToday": 2,
        "reactivatedToday": 0,
        "warehousedToday": 6,
        "lastDispatchedAt": iso(shipped.occurred_at),
    }
    assert stats["since"].endswith("T00:00:00Z")
    assert body["timestamp"] >= stats["since"]


# --- the stream's REST side ------------------------------------------------------


def test_stream_path_under_wsgi_answers_503_envelope(http, make_user):
    user = make_user("operator")
    response = http.get("/api/live-products/dispatchable/stream", headers=bearer(user))
    body = assert_envelope(response, 503, "stream_not_served_here")
    assert "daphne" in body["error"]
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_stream_ticket_is_single_use(make_user):
    user = make_user("auditor")
    response = api(user).post("/api/live-products/dispatchable/stream-ticket")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "ticket", "expiresIn", "url"}
    assert (body["success"], body["expiresIn"]) == (True, 30)
    assert body["url"] == (
        f"/api/live-products/dispatchable/stream?ticket={body['ticket']}"
    )
    grant = tickets.ticket_redeem(ticket=body["ticket"])
    assert grant is not None
    assert grant.user_id == user.pk
    assert grant.token_generation == 0  # of the token that asked for it
    assert tickets.ticket_redeem(ticket=body["ticket"]) is None
    assert tickets.ticket_redeem(ticket="made-up") is None


def test_audit_records_every_desk_move(desk, sam):
    before = AuditRecord.objects.count()
    api(sam).post(
        "/api/products/lifecycle",
        {"productId": "PK-006", "action": "reactivate"},
        format="json",
    )
    record = AuditRecord.objects.order_by("-pk").first()
    assert AuditRecord.objects.count() == before + 1
    assert record.action == "passport.reactivated"


def test_dispatchable_body_is_byte_for_byte_the_serializers(desk, sam):
    """The list is read as values() rows (docs/performance.md): its body is
    what DispatchableProductSerializer printed for the same products, also for
    one without a warehoused location and one with a BPAN."""
    from bpmos.renderers import JSONRenderer
    from passports.dispatch import selectors
    from passports.dispatch.api.serializers import DispatchableProductSerializer

    make_pack(sam, "PK-008", location="")
    make_pack(sam, "PK-009", location="Dock 2 \u00b7 \u201cbay\u201d")
    make_pack(sam, "PK-010")
    Passport.objects.filter(serial="PK-010").update(bpan="INBPM0000000000000001")
    response = api(sam).get("/api/live-products/dispatchable")
    products = selectors.dispatchable_list()
    expected = JSONRenderer().render(
        {
            "success": True,
            "products": DispatchableProductSerializer(products, many=True).data,
            "count": len(products),
        }
    )
    assert response.status_code == 200
    assert response.content == expected
    rows = {row["serial"]: row for row in response.json()["products"]}
    assert set(rows) == {"PK-001", "PK-002", "PK-008", "PK-009", "PK-010"}
    assert "location" not in rows["PK-008"]
    assert rows["PK-009"]["location"] == "Dock 2 \u00b7 \u201cbay\u201d"
    assert rows["PK-010"]["bpan"] == "INBPM0000000000000001"
