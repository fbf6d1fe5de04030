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

import json
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
    Role.ADMIN: {Tier.PUBLIC, Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY},
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
    return sentinel_pack(make_user)


def sentinel_pack(make_user) -> Passport:
    """A pack holding every sentinel (the walk in test_passport_tier_walk.py
    uses it too)."""
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
        ("api", f"/api/passports/{ident}/export?format=batterypass"),
        ("api", f"/api/passports/{ident}/export?format=aas"),
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


def test_the_admin_page_shows_the_authority_tier_to_auditors_and_admins(
    make_user, pack
):
    path = f"/admin/passports/passport/{pack.pk}/change/"
    for role, shown in [(Role.AUDITOR, True), (Role.ADMIN, True)]:
        status, body = fetch("page", path, make_user(role))
        assert status == 200
        assert ("leak-authority-test-report" in body) is shown, role
        assert "LeakCathodeOxide" in body, role  # both read legitimate interest


def test_the_detail_shows_legitimate_interest_to_its_readers(make_user, pack):
    status, body = fetch("api", f"/api/passports/{pack.uuid}", make_user(Role.ADMIN))
    assert status == 200
    assert "LeakCathodeOxide" in body
    assert "LEAKBARCODE77" in body


@pytest.mark.parametrize("fmt", ["batterypass", "aas"])
@pytest.mark.parametrize("role", list(EXPECTED_TIERS))
def test_the_exports_carry_every_tier_the_caller_has(make_user, pack, role, fmt):
    # The export's positive control: what the caller may read is there.
    user = None if role == ANONYMOUS else make_user(role)
    status, body = fetch("api", f"/api/passports/{pack.uuid}/export?format={fmt}", user)
    assert status == 200
    for tier, sentinels in SENTINELS.items():
        for field, (_, text) in sentinels.items():
            if field == "temperature_c":
                continue  # the latest sample: not an attribute
            assert (text in body) == (tier in EXPECTED_TIERS[role]), (role, field)


# --- access grants for outside parties ------------------------------------------


def issue(admin, **body):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(admin)["Authorization"])
    return client.post("/api/passports/grants", body, format="json")


def as_holder(path: str, token: str):
    return APIClient().get(path, HTTP_X_PASSPORT_GRANT=token)


def test_a_grant_opens_the_legitimate_interest_tier_and_each_use_is_audited(
    make_user, pack
):
    from elog.models import AuditRecord

    admin = make_user(Role.ADMIN)
    response = issue(admin, party="Recycler AG", passport=pack.serial, days=7)
    assert response.status_code == 201, response.json()
    body = response.json()
    token = body.pop("token")
    assert set(body) == {
        "id",
        "party",
        "passportId",
        "customer",
        "expiresAt",
        "issuedAt",
        "revokedAt",
    }
    assert body["passportId"] == str(pack.uuid)
    from passports.models import PassportAccessGrant

    assert PassportAccessGrant.objects.get().token_hash != token
    lister = APIClient()
    lister.credentials(HTTP_AUTHORIZATION=bearer(admin)["Authorization"])
    listed = lister.get("/api/passports/grants")
    assert [row["id"] for row in listed.json()] == [body["id"]]
    assert token not in listed.content.decode()

    uses = AuditRecord.objects.filter(action="passport.grant_used").count()
    answer = as_holder(f"/api/passports/{pack.uuid}/attributes", token)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert answer.json()["tiers"] == ["public", "legitimate_interest"]
    for field, (_, shown) in SENTINELS[Tier.LEGITIMATE_INTEREST].items():
        if field not in {"barcode", "rfid", "temperature_c"}:
            assert shown in text, field
    assert "leak-authority-test-report" not in text
    assert AuditRecord.objects.filter(action="passport.grant_used").count() == uses + 1
    # The export honours the grant as the attributes do, and no further.
    for fmt in ("batterypass", "aas"):
        path = f"/api/passports/{pack.uuid}/export?format={fmt}"
        text = as_holder(path, token).content.decode()
        assert "LeakCathodeOxide" in text, fmt
        assert "LEAKBARCODE77" in text, fmt
        assert "leak-authority-test-report" not in text, fmt
    # Every other route answers the holder as the public.
    for kind, path in routes(pack):
        if kind != "api" or path.endswith("/attributes") or "/export?" in path:
            continue  # the two routes that honour a grant
        other = APIClient().get(path, HTTP_X_PASSPORT_GRANT=token)
        assert "LeakCathodeOxide" not in other.content.decode(), path


def test_a_grant_is_refused_for_another_passport_revoked_or_expired(make_user, pack):
    from elog.models import AuditRecord
    from passports.models import PassportAccessGrant

    admin = make_user(Role.ADMIN)
    other = register(admin, "PACK-TIER-00002", bpan=a_bpan("00002"))
    token = issue(admin, party="Recycler AG", passport=other.serial).json()["token"]
    path = f"/api/passports/{pack.uuid}/attributes"
    uses = AuditRecord.objects.filter(action="passport.grant_used").count()

    def refused(token: str) -> None:
        answer = as_holder(path, token)
        assert answer.status_code == 403
        assert answer.json()["code"] == "grant_invalid"
        assert "LeakCathodeOxide" not in answer.content.decode()

    refused(token)
    refused("not-a-token")
    own = issue(admin, party="Recycler AG", passport=str(pack.uuid)).json()
    assert as_holder(path, own["token"]).status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(admin)["Authorization"])
    revoked = client.post(f"/api/passports/grants/{own['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"] is not None
    refused(own["token"])
    again = client.post(f"/api/passports/grants/{own['id']}/revoke")
    assert again.status_code == 409
    assert again.json()["code"] == "grant_revoked"
    late = issue(admin, party="Recycler AG", passport=str(pack.uuid)).json()
    PassportAccessGrant.objects.filter(pk=late["id"]).update(
        expires_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    refused(late["token"])
    assert AuditRecord.objects.filter(action="passport.grant_used").count() == uses + 1
    # The export refuses another passport's grant as the attributes do.
    answer = as_holder(f"/api/passports/{pack.uuid}/export?format=aas", token)
    assert answer.status_code == 403
    assert answer.json()["code"] == "grant_invalid"


def test_a_customer_grant_covers_the_passports_that_customer_holds(make_user, pack):
    admin = make_user(Role.ADMIN)
    token = issue(admin, party="Fleet auditor", customer="Fleet Co").json()["token"]
    path = f"/api/passports/{pack.uuid}/attributes"
    assert as_holder(path, token).status_code == 403  # the manufacturer holds it
    Passport.objects.filter(pk=pack.pk).update(custodian_name="Fleet Co")
    assert as_holder(path, token).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"party": "X"}, "passport"),
        ({"party": "X", "passport": "PACK-TIER-00001", "customer": "Y"}, "passport"),
        ({"party": "", "customer": "Y"}, "party"),
        ({"party": "X", "customer": "Y", "days": 0}, "days"),
        ({"party": "X", "customer": "Y", "days": 91}, "days"),
        ({"party": "X", "customer": "Y", "token": "mine"}, "token"),
    ],
)
def test_a_bad_grant_is_400_and_nothing_is_issued(make_user, pack, body, field):
    from elog.models import AuditRecord
    from passports.models import PassportAccessGrant

    before = AuditRecord.objects.count()
    response = issue(make_user(Role.ADMIN), **body)
    assert response.status_code == 400
    assert list(response.json()["details"]) == [field]
    assert PassportAccessGrant.objects.count() == 0
    assert AuditRecord.objects.count() == before


def test_a_grant_for_a_garbled_identifier_is_refused_and_nothing_is_issued(
    make_user, pack
):
    """Characters outside the BMP name no passport (the schema fuzz's 500): 404;
    with a NUL the body is refused at the door (bpmos.parsers): 400."""
    from passports.models import PassportAccessGrant

    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=bearer(make_user(Role.ADMIN))["Authorization"]
    )
    for identifier, status, code in [
        ("\ud969\udcaem#", 404, "not_found"),
        ("\ud969\udcaem\x00#", 400, "parse_error"),
    ]:
        raw = json.dumps({"party": "X", "passport": identifier})
        response = client.post(
            "/api/passports/grants", raw, content_type="application/json"
        )
        assert (response.status_code, response.json()["code"]) == (status, code)
    assert PassportAccessGrant.objects.count() == 0


@pytest.mark.parametrize(
    "role",
    [Role.OPERATOR, Role.PLANNER, Role.SUPERVISOR, Role.PLANT_HEAD, Role.AUDITOR],
)
def test_only_admins_issue_grants(make_user, pack, role):
    response = issue(make_user(role), party="X", passport=pack.serial)
    assert response.status_code == 403
