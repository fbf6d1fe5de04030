"""The Aadhaar Ready % (compliance.score) and the validator behind it
(passports.conformity): a complete passport of each kind passes; a passport
made to fail each rule, one by one, fails exactly that rule and is counted
exactly; the snapshot, its pruning and the beat task; GET /api/compliance/score
(shape, no scan per request, an empty plant); the passport API's conformity."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bpmos.celery import BEAT_SCHEDULE
from bpmos.roles import Role
from compliance import score, tasks_score
from compliance.models import ScoreSnapshot
from passports import bpan as bpan_rules
from passports import conformity, services
from passports.models import Kind, Passport
from tests.conftest import api_as as api
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db

_serials = itertools.count(1)
MADE = "2026-03-02T08:00:00+00:00"
SPEC = {
    Kind.CELL: {
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "3.2",
        "energy_kwh": "0.32",
    },
    Kind.MODULE: {
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "25.6",
        "energy_kwh": "2.56",
    },
    Kind.PACK: {
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "51.2",
        "energy_kwh": "5.12",
    },
}
SCORE_KEYS = {
    "aadhaarReadyPercent",
    "total",
    "ready",
    "computedAt",
    "durationMs",
    "perKind",
    "topFailingRules",
}


def complete(kind: str = Kind.PACK, **overrides: Any) -> Passport:
    """A passport with every attribute the rules ask for, registered through
    the service (a pack is issued its BPAN)."""
    n = next(_serials)
    data: dict[str, Any] = {
        "kind": kind,
        "serial": f"{kind[0].upper()}-{n:05d}",
        "model": f"{kind.upper()}-LFP",
        "manufacturer": "BPM Energy",
        "manufacturer_id": "IN-BWM-000123",
        "site": "Chakan Battery Plant, Pune, IN",
        "manufactured_at": MADE,
        "chemistry": "LFP",
        "critical_raw_materials": ["lithium", "natural graphite"],
        "mass_kg": "44.5",
        "carbon_footprint_kg_co2e_per_kwh": "68.4",
        **SPEC[kind],
    }
    if kind == Kind.PACK:
        data.update(
            carbon_footprint_class="B",
            manufacturer_code="BPM",
            plant_code="P",
            bpan_serial=f"{n:05d}",
        )
    data.update(overrides)
    return services.passport_register(data=data, actor=None)


def spoil(passport: Passport, **values: Any) -> Passport:
    """Write values the register service would refuse, straight to the row."""
    Passport.objects.filter(pk=passport.pk).update(**values)
    return Passport.objects.get(pk=passport.pk)


def failing_ids(passport: Passport) -> list[str]:
    return [rule.id for rule in conformity.passport_conformity(passport).failing]


def other_chemistry_bpan() -> str:
    """A valid BPAN, but for an NMC pack (ours are LFP)."""
    return bpan_rules.issue(
        manufacturer="BPM",
        chemistry="NMC",
        nominal_voltage_v=51.2,
        energy_kwh=5.12,
        made=date(2026, 3, 2),
        plant="P",
        serial="ZZ999",
    )


def bad_check_character(passport: Passport) -> dict[str, str]:
    body = passport.bpan[:-1]
    wrong = next(c for c in "0123456789ABCDEF" if c != passport.bpan[-1])
    return {"bpan": body + wrong}


# (rule id, kind, values that make a complete passport fail that rule alone).
# A callable value gets the passport and returns the values.
CASES: list[tuple[str, str, Any]] = [
    ("identity.kind", Kind.CELL, {"kind": "battery"}),
    ("identity.serial", Kind.CELL, {"serial": " C-PADDED"}),
    ("identity.serial", Kind.MODULE, {"serial": ""}),
    ("identity.serial", Kind.PACK, {"serial": "PK-NEWLINE\n"}),
    ("identity.model", Kind.PACK, {"model": ""}),
    ("bpan.present", Kind.PACK, {"bpan": None}),
    ("bpan.present", Kind.PACK, {"bpan": ""}),
    ("bpan.check", Kind.PACK, bad_check_character),
    ("bpan.check", Kind.PACK, {"bpan": "IN-NOT-A-BPAN"}),
    ("bpan.check", Kind.PACK, lambda p: {"bpan": p.bpan.lower()}),
    ("bpan.matches", Kind.PACK, lambda p: {"bpan": other_chemistry_bpan()}),
    ("manufacturer.name", Kind.MODULE, {"manufacturer": ""}),
    ("manufacturer.id", Kind.PACK, {"manufacturer_id": ""}),
    ("manufacturer.id", Kind.PACK, {"manufacturer_id": "   "}),
    ("manufacturer.site", Kind.PACK, {"site": ""}),
    (
        "manufacturer.date",
        Kind.CELL,
        lambda p: {"manufactured_at": timezone.now() + timedelta(days=2)},
    ),
    (
        "manufacturer.date",
        Kind.MODULE,
        lambda p: {"manufactured_at": datetime(1999, 12, 31, tzinfo=UTC)},
    ),
    ("chemistry.declared", Kind.CELL, {"chemistry": "PbA"}),
    ("chemistry.critical_raw_materials", Kind.CELL, {"critical_raw_materials": []}),
    (
        "chemistry.critical_raw_materials",
        Kind.PACK,
        {"critical_raw_materials": "lithium"},
    ),
    (
        "chemistry.critical_raw_materials",
        Kind.MODULE,
        {"critical_raw_materials": ["lithium", 7]},
    ),
    ("capacity.rated_capacity", Kind.MODULE, {"rated_capacity_ah": Decimal("0")}),
    ("capacity.nominal_voltage", Kind.CELL, {"nominal_voltage_v": Decimal("-3.2")}),
    ("capacity.energy", Kind.MODULE, {"energy_kwh": Decimal("0")}),
    ("capacity.energy_consistent", Kind.MODULE, {"energy_kwh": Decimal("9.999")}),
    ("capacity.mass", Kind.CELL, {"mass_kg": None}),
    ("carbon.footprint", Kind.MODULE, {"carbon_footprint_kg_co2e_per_kwh": None}),
    ("carbon.class", Kind.PACK, {"carbon_footprint_class": ""}),
    ("carbon.class", Kind.PACK, {"carbon_footprint_class": "Z"}),
    ("carbon.class", Kind.PACK, {"carbon_footprint_class": "B\n"}),
]


def _values(passport: Passport, change: Any) -> dict[str, Any]:
    return change(passport) if callable(change) else change


# --- the validator -------------------------------------------------------------


@pytest.mark.parametrize("kind", Kind.values)
def test_a_complete_passport_of_each_kind_fails_no_rule(kind):
    passport = complete(kind)

    result = conformity.passport_conformity(passport)

    assert result.failing == ()
    assert result.as_dict() == {"ready": True, "failingRules": []}


def test_every_rule_has_a_case_that_fails_it():
    assert {rule_id for rule_id, _, _ in CASES} == set(conformity.RULES_BY_ID)


def test_rule_ids_are_stable_and_documented():
    ids = [rule.id for rule in conformity.RULES]
    assert ids == [
        "identity.kind",
        "identity.serial",
        "identity.model",
        "bpan.present",
        "bpan.check",
        "bpan.matches",
        "manufacturer.name",
        "manufacturer.id",
        "manufacturer.site",
        "manufacturer.date",
        "chemistry.declared",
        "chemistry.critical_raw_materials",
        "capacity.rated_capacity",
        "capacity.nominal_voltage",
        "capacity.energy",
        "capacity.energy_consistent",
        "capacity.mass",
        "carbon.footprint",
        "carbon.class",
    ]
    with open("docs/compliance.md", encoding="utf-8") as docs:
        text = docs.read()
    for rule in conformity.RULES:
        assert f"`{rule.id}`" in text, rule.id


def test_the_market_declarations_are_asked_of_packs_only():
    pack_only = {r.id for r in conformity.RULES if r.kinds == {Kind.PACK}}
    assert pack_only == {
        "bpan.present",
        "bpan.check",
        "bpan.matches",
        "manufacturer.id",
        "carbon.class",
    }
    for kind in (Kind.CELL, Kind.MODULE):
        passport = complete(kind, carbon_footprint_class="", manufacturer_id="")
        assert passport.bpan is None
        assert failing_ids(passport) == []


@pytest.mark.parametrize(
    ("rule_id", "kind", "change"),
    CASES,
    ids=[f"{rule_id}-{kind}-{n}" for n, (rule_id, kind, _) in enumerate(CASES)],
)
def test_a_passport_made_to_fail_one_rule_fails_it_alone_and_is_counted(
    rule_id, kind, change
):
    others = [complete(k) for k in Kind.values]
    passport = complete(kind)
    passport = spoil(passport, **_values(passport, change))

    assert failing_ids(passport) == [rule_id]
    result = conformity.passport_conformity(passport).as_dict()
    assert result == {
        "ready": False,
        "failingRules": [
            {"rule": rule_id, "message": conformity.RULES_BY_ID[rule_id].message}
        ],
    }

    snapshot = score.score_compute()

    assert (snapshot.total, snapshot.ready) == (4, 3)
    assert snapshot.failing_rules == [
        {
            "rule": rule_id,
            "message": conformity.RULES_BY_ID[rule_id].message,
            "count": 1,
        }
    ]
    expected = {k: {"total": 1, "ready": 1} for k in Kind.values}
    stored_kind = Passport.objects.get(pk=passport.pk).kind
    if stored_kind in expected:
        expected[stored_kind] = {"total": 2, "ready": 1}
    else:  # identity.kind: the row's kind is one the model does not know
        expected[stored_kind] = {"total": 1, "ready": 0}
    assert snapshot.per_kind == expected
    assert len(others) == 3


def test_a_value_of_the_wrong_type_fails_the_rule_instead_of_raising():
    cell = complete(Kind.CELL)
    values = conformity.values_of(cell)
    broken = {
        **values,
        "rated_capacity_ah": Decimal("NaN"),
        "mass_kg": "heavy",
        "carbon_footprint_kg_co2e_per_kwh": True,
        "manufactured_at": "2026-03-02",
        "critical_raw_materials": {"lithium": 1},
    }

    ids = [rule.id for rule in conformity.failing(broken)]

    assert ids == [
        "manufacturer.date",
        "chemistry.critical_raw_materials",
        "capacity.rated_capacity",
        "capacity.mass",
        "carbon.footprint",
    ]


def test_a_sodium_ion_battery_may_declare_no_critical_raw_material():
    cell = complete(Kind.CELL, chemistry="NaION", critical_raw_materials=[])
    assert failing_ids(cell) == []


def test_a_bpan_month_a_time_zone_away_still_matches():
    # 31 March 20:00 UTC is 1 April in India; the BPAN says April.
    made = complete(Kind.PACK, manufactured_at="2026-04-01T01:30:00+05:30")
    pack = Passport.objects.get(pk=made.pk)
    assert pack.bpan[11:14] == "264"
    assert pack.manufactured_at == datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
    assert failing_ids(pack) == []


# --- the score --------------------------------------------------------------------


def test_score_of_a_mixed_plant_counts_exactly():
    for kind in Kind.values:
        complete(kind)
    spoil(complete(Kind.PACK), carbon_footprint_class="", manufacturer_id="")
    bad = complete(Kind.PACK)
    spoil(bad, **bad_check_character(bad))
    spoil(complete(Kind.CELL), mass_kg=None)

    snapshot = score.score_compute()

    assert (snapshot.total, snapshot.ready) == (6, 3)
    assert snapshot.per_kind == {
        "cell": {"total": 2, "ready": 1},
        "module": {"total": 1, "ready": 1},
        "pack": {"total": 3, "ready": 1},
    }
    assert [(r["rule"], r["count"]) for r in snapshot.failing_rules] == [
        ("bpan.check", 1),
        ("capacity.mass", 1),
        ("carbon.class", 1),
        ("manufacturer.id", 1),
    ]
    body = score.score_body(snapshot)
    assert body["aadhaarReadyPercent"] == 50.0
    assert body["perKind"] == [
        {"kind": "Cell", "total": 2, "ready": 1, "percent": 50.0},
        {"kind": "Module", "total": 1, "ready": 1, "percent": 100.0},
        {"kind": "Pack", "total": 3, "ready": 1, "percent": 33.3},
    ]


def test_rules_failed_most_come_first():
    for _ in range(2):
        spoil(complete(Kind.CELL), mass_kg=None, carbon_footprint_kg_co2e_per_kwh=None)
    spoil(complete(Kind.CELL), mass_kg=None)

    snapshot = score.score_compute()

    assert [(r["rule"], r["count"]) for r in snapshot.failing_rules] == [
        ("capacity.mass", 3),
        ("carbon.footprint", 2),
    ]
    assert snapshot.ready == 0


def test_percent_rounds_half_up_to_one_decimal_and_is_none_without_passports():
    assert score.percent(2, 3) == 66.7
    assert score.percent(1, 3) == 33.3
    assert score.percent(1, 8) == 12.5
    assert score.percent(1, 16) == 6.3
    assert score.percent(0, 0) is None


def test_the_score_reads_passports_in_one_query_whatever_their_number():
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            score.score_compute()
        return sum("passports_passport" in q["sql"] for q in captured.captured_queries)

    complete(Kind.CELL)
    few = queries()
    for kind in Kind.values * 3:
        complete(kind)

    assert few == queries() == 1


def test_snapshots_older_than_the_retention_are_pruned_and_the_newest_kept():
    now = timezone.now()
    old = ScoreSnapshot.objects.create(
        computed_at=now - score.RETENTION - timedelta(hours=1), total=0, ready=0
    )
    recent = ScoreSnapshot.objects.create(
        computed_at=now - score.RETENTION + timedelta(hours=1), total=0, ready=0
    )

    snapshot = score.score_compute()

    assert set(ScoreSnapshot.objects.values_list("pk", flat=True)) == {
        recent.pk,
        snapshot.pk,
    }
    assert not ScoreSnapshot.objects.filter(pk=old.pk).exists()
    assert score.score_latest() == snapshot


def test_beat_refreshes_the_score_every_ten_minutes():
    entry = BEAT_SCHEDULE["compliance-score-refresh"]
    assert entry["task"] == "compliance.tasks_score.compliance_score_refresh_task"
    assert entry["options"]["expires"] < entry["schedule"] == 600.0
    assert tasks_score.compliance_score_refresh_task.name == entry["task"]


def test_the_beat_task_writes_a_snapshot():
    complete(Kind.PACK)
    spoil(complete(Kind.PACK), site="")

    snapshot_id = tasks_score.compliance_score_refresh_task.apply().get()

    snapshot = ScoreSnapshot.objects.get(pk=snapshot_id)
    assert (snapshot.total, snapshot.ready) == (2, 1)
    assert snapshot.failing_rules[0]["rule"] == "manufacturer.site"


# --- GET /api/compliance/score ----------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_score(make_user, role):
    response = api(make_user(role)).get("/api/compliance/score")
    assert response.status_code == 200, response.content


def test_the_score_needs_a_token():
    assert_envelope(api().get("/api/compliance/score"), 401, "not_authenticated")


def test_the_score_of_an_empty_plant_is_null_not_an_error(make_user):
    response = api(make_user(Role.AUDITOR)).get("/api/compliance/score")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == SCORE_KEYS
    assert body["aadhaarReadyPercent"] is None
    assert (body["total"], body["ready"]) == (0, 0)
    assert body["perKind"] == []
    assert body["topFailingRules"] == []


def test_the_api_computes_once_then_serves_the_snapshot(make_user):
    client = api(make_user(Role.ADMIN))
    complete(Kind.PACK)
    spoil(complete(Kind.PACK), carbon_footprint_class="")
    assert ScoreSnapshot.objects.count() == 0

    first = client.get("/api/compliance/score/").json()
    spoil(complete(Kind.CELL), manufacturer="")  # not seen until the next run
    second = client.get("/api/compliance/score").json()

    assert ScoreSnapshot.objects.count() == 1
    assert first == second
    assert first["aadhaarReadyPercent"] == 50.0
    assert first["topFailingRules"] == [
        {
            "rule": "carbon.class",
            "message": conformity.RULES_BY_ID["carbon.class"].message,
            "count": 1,
        }
    ]
    assert first["computedAt"].endswith("Z")

    score.score_compute()
    third = client.get("/api/compliance/score").json()
    assert (third["total"], third["ready"]) == (3, 1)
    assert third["perKind"] == [
        {"kind": "Cell", "total": 1, "ready": 0, "percent": 0.0},
        {"kind": "Pack", "total": 2, "ready": 1, "percent": 50.0},
    ]
    assert [r["rule"] for r in third["topFailingRules"]] == [
        "carbon.class",
        "manufacturer.name",
    ]


# --- the passport API's conformity --------------------------------------------------


def test_the_passport_detail_shows_its_failing_rules(make_user):
    pack = spoil(complete(Kind.PACK), carbon_footprint_class="", mass_kg=None)
    client = api(make_user(Role.OPERATOR))

    detail = client.get(f"/api/passports/{pack.serial}").json()
    route = client.get(f"/api/passports/{pack.uuid}/conformity")

    expected = {
        "ready": False,
        "failingRules": [
            {
                "rule": "capacity.mass",
                "message": conformity.RULES_BY_ID["capacity.mass"].message,
            },
            {
                "rule": "carbon.class",
                "message": conformity.RULES_BY_ID["carbon.class"].message,
            },
        ],
    }
    assert detail["conformity"] == expected
    assert route.status_code == 200
    assert route.json() == expected


def test_a_ready_passport_says_so(make_user):
    cell = complete(Kind.CELL)
    body = api(make_user(Role.AUDITOR)).get(f"/api/passports/{cell.serial}/conformity")
    assert body.json() == {"ready": True, "failingRules": []}


def test_conformity_of_an_unknown_passport_is_404(make_user):
    response = api(make_user(Role.PLANNER)).get("/api/passports/NO-SUCH/conformity")
    assert_envelope(response, 404, "not_found")


# --- the admin ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_auditors_and_admins_read_the_snapshots_in_the_admin(client, make_user, role):
    spoil(complete(Kind.PACK), carbon_footprint_class="")
    complete(Kind.CELL)
    snapshot = score.score_compute()
    client.force_login(make_user(role))

    listing = client.get(reverse("admin:compliance_scoresnapshot_changelist"))
    detail = client.get(
        reverse("admin:compliance_scoresnapshot_change", args=[snapshot.pk])
    )

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [snapshot]
    assert b"50.0 %" in listing.content
    assert b"carbon.class (1)" in listing.content
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert b"pack: 0 of 1 ready" in detail.content
    assert b"cell: 1 of 1 ready" in detail.content


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_nobody_writes_snapshots_in_the_admin(client, make_user, role):
    snapshot = score.score_compute()
    client.force_login(make_user(role))

    add = client.get(reverse("admin:compliance_scoresnapshot_add"))
    delete = client.post(
        reverse("admin:compliance_scoresnapshot_delete", args=[snapshot.pk]),
        {"post": "yes"},
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    assert list(ScoreSnapshot.objects.values_list("pk", flat=True)) == [snapshot.pk]


def test_the_shop_floor_does_not_see_the_snapshot_admin(client, make_user):
    client.force_login(make_user(Role.SUPERVISOR))
    response = client.get(reverse("admin:compliance_scoresnapshot_changelist"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("admin:login"))
