"""Access tiers enforced on the server: every route that returns passport data,
for every caller (no token and each role), must not carry a value of a tier
the caller may not read.

A pack is given a distinctive value ("sentinel") in every field above the
public tier; each answer's body is searched for the sentinels of the tiers
the caller lacks. What each role may read is written here, not read from the
code (passports/attributes.py must agree with it). A positive control checks
that the attributes route does carry the sentinels of the tiers a caller has,
so the search cannot pass by finding nothing anywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from bpmos.roles import Role
from passports import attributes
from passports.attributes import Tier
from passports.models import EventKind, Kind, Passport
from tests.conftest import bearer
from tests.factories_passports_api import a_bpan, append, register

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
# What each caller may read (Regulation (EU) 2023/1542 Art. 77(2), Annex XIII;
# docs/passports.md): the auditor stands for the authorities.
EXPECTED_TIERS = {
    ANONYMOUS: {Tier.PUBLIC},
    Role.OPERATOR: {Tier.PUBLIC},
    Role.PLANNER: {Tier.PUBLIC},
    Role.SUPERVISOR: {Tier.PUBLIC, Tier.LEGITIMATE_INTEREST},
    Role.PLANT_HEAD: {Tier.PUBLIC, Tier.LEGITIMATE_INTEREST},
    Role.ADMIN: {Tier.PUBLIC, Tier.LEGITIMATE_INTEREST},
    Role.AUDITOR: {Tier.PUBLIC, Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY},
}
# field -> (value stored, text it shows as), per tier above public.
SENTINELS: dict[Tier, dict[str, tuple[object, str]]] = {
    Tier.LEGITIMATE_INTEREST: {
        "barcode": ("LEAKBARCODE77", "LEAKBARCODE77"),
        "rfid": ("E2801160600002049F1ABEEF", "E2801160600002049F1ABEEF"),
        "cathode_material": ("LeakCathodeOxide", "LeakCathodeOxide"),
        "anode_material": ("LeakAnodeGraphite", "LeakAnodeGraphite"),
        "electrolyte": ("LeakElectrolyteSalt", "LeakElectrolyteSalt"),
        "material_composition": ({"leakium": 3.1}, "leakium"),
        "dismantling_information": (
            "https://bpm.example/leak-dismantling",
            "leak-dismantling",
        ),
        "spare_part_sources": (["LeakSparesGmbH"], "LeakSparesGmbH"),
        "safety_measures": ("https://bpm.example/leak-safety", "leak-safety"),
        "soh_percent": (87.123, "87.123"),
        "soc_percent": (41.987, "41.987"),
        "temperature_c": (23.456, "23.456"),
        "full_cycles": (918273, "918273"),
        "energy_throughput_kwh": (Decimal("12345.678"), "12345.678"),
        "capacity_throughput_ah": (Decimal("23456.79"), "23456.79"),
        "temperature_min_c": (-17.321, "-17.321"),
        "temperature_max_c": (58.765, "58.765"),
        "time_above_max_temperature_s": (424242, "424242"),
        "time_below_min_temperature_s": (434343, "434343"),
        "deep_discharge_events": (615243, "615243"),
        "overcharge_events": (827364, "827364"),
    },
    Tier.AUTHORITY: {
        "test_report": (
            "https://bpm.example/leak-authority-test-report",
            "leak-authority-test-report",
        ),
    },
}


def test_the_sentinels_cover_every_field_above_public():
    # A new restricted field must get a sentinel here, or the walk misses it.
    for tier in (Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY):
        declared = {
            name
            for name, field_tier in attributes.FIELD_TIER.items()
            if field_tier == tier and name not in {"telemetry_at", "usage_updated_at"}
        }
        assert declared == set(SENTINELS[tier]), tier


def test_the_registry_gives_each_role_the_expected_tiers(make_user):
    for role, tiers in EXPECTED_TIERS.items():
        user = None if role == ANONYMOUS else make_user(role)
        assert set(attributes.reader_tiers(user)) == tiers, role


@pytest.fixture
def pack(make_user) -> Passport:
    boss = make_user(Role.SUPERVISOR, username="boss")
    pack = register(boss, "PACK-TIER-00001", bpan=a_bpan("00001"))
    module = register(boss, "MOD-TIER-00001", kind=Kind.MODULE)
    append(boss, module, EventKind.QA_PASSED)
    append(boss, pack, EventKind.QA_PASSED)
    from passports import services

    services.passport_assemble(parent_id=pack.pk, component_ids=[module.pk], actor=boss)
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    values = {
        name: value for tier in SENTINELS.values() for name, (value, _) in tier.items()
    }
    Passport.objects.filter(pk=pack.pk).update(
        **values, telemetry_at=at, usage_updated_at=at
    )
    pack.refresh_from_db()
    return pack


def routes(pack: Passport) -> list[tuple[str, str]]:
    """(kind, path) of every route that answers with passport data."""
    ident = str(pack.uuid)
    return [
        ("api", "/api/passports"),
        ("api", f"/api/passports?search={pack.serial}"),
        ("api", f"/api/passports/lookup?identifier={pack.serial}"),
        ("api", f"/api/passports/{ident}"),
        ("api", f"/api/passports/{pack.serial}"),
        ("api", f"/api/passports/{ident}/public"),
        ("api", f"/api/passports/{ident}/attributes"),
        ("api", f"/api/passports/{ident}/completeness"),
        ("api", f"/api/passports/{ident}/conformity"),
        ("api", f"/api/passports/{ident}/ledger"),
        ("api", f"/api/passports/{ident}/genealogy"),
        ("api", f"/api/passports/{ident}/telemetry"),
        ("api", f"/api/passports/{ident}/provisioning"),
        ("api", "/api/registry"),
        ("api", f"/api/registry/{ident}"),
        ("api", "/api/reports/passport-ledger-extract/preview"),
        ("api", "/api/compliance/score"),
        ("page", f"/p/{ident}"),
        ("page", "/admin/passports/passport/"),
        ("page", f"/admin/passports/passport/{pack.pk}/change/"),
        ("page", f"/admin/passports/passport/?q={pack.serial}"),
        ("page", "/admin/compliance/scoresnapshot/"),
    ]


def fetch(kind: str, path: str, user) -> tuple[int, str]:
    if kind == "api":
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
        response = client.get(path)
    else:
        client = Client()
        if user is not None:
            client.force_login(user)
        response = client.get(path)
    return response.status_code, response.content.decode()


@pytest.mark.parametrize("role", list(EXPECTED_TIERS))
def test_no_route_leaks_a_tier_the_caller_lacks(make_user, pack, role):
    user = None if role == ANONYMOUS else make_user(role)
    allowed = EXPECTED_TIERS[role]
    leaks, answered = [], 0
    for kind, path in routes(pack):
        status, body = fetch(kind, path, user)
        assert status < 500, (path, status)
        if status == 200:
            answered += 1
        for tier, sentinels in SENTINELS.items():
            if tier in allowed:
                continue
            leaks += [
                (path, field) for field, (_, text) in sentinels.items() if text in body
            ]
    assert leaks == []
    assert answered >= 3  # the public passport, the attributes, the page at least


@pytest.mark.parametrize("role", list(EXPECTED_TIERS))
def test_the_attributes_route_carries_every_tier_the_caller_has(make_user, pack, role):
    # The positive control of the walk above: the sentinels are findable.
    user = None if role == ANONYMOUS else make_user(role)
    status, body = fetch("api", f"/api/passports/{pack.uuid}/attributes", user)
    assert status == 200
    for tier, sentinels in SENTINELS.items():
        for field, (_, text) in sentinels.items():
            if field in {"barcode", "rfid", "temperature_c"}:
                continue  # identifiers and the latest sample: the detail's
            assert (text in body) == (tier in EXPECTED_TIERS[role]), (role, field)


def test_the_admin_page_shows_the_authority_tier_to_auditors_only(make_user, pack):
    path = f"/admin/passports/passport/{pack.pk}/change/"
    for role, shown in [(Role.AUDITOR, True), (Role.ADMIN, False)]:
        status, body = fetch("page", path, make_user(role))
        assert status == 200
        assert ("leak-authority-test-report" in body) is shown, role
        assert "LeakCathodeOxide" in body, role  # both read legitimate interest


def test_the_detail_shows_legitimate_interest_to_its_readers(make_user, pack):
    status, body = fetch("api", f"/api/passports/{pack.uuid}", make_user(Role.ADMIN))
    assert status == 200
    assert "LeakCathodeOxide" in body
    assert "LEAKBARCODE77" in body
