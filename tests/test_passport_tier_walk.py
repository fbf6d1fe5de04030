"""The route x tier x caller walk: every route that returns passport data
(the passport and registry API, the dispatch desk, dashboards, logs, LIMS
results, reports and their downloads, compliance, the pages and the admin),
for every role, anonymous, and holders of an access grant (anonymous and
signed in with a role below legitimate interest), must carry no value of a
tier the caller may not read on that route.

The sentinels are tests/test_passport_tiers.py's (one distinctive value in
every field above the public tier), plus a lab's test report applied through
the LIMS (authority tier), which must not reach the ledger, the LIMS results
or anything else a non-authority reader sees. What each caller may read is
written here: a grant adds legitimate interest on the routes that take one
(the attributes, the export, the detail and the registry's), nowhere else, and
never the authority tier. Positive controls show the grant's and the lab's
sentinels are findable where they belong, so the search cannot pass by
finding nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from rest_framework.test import APIClient

from bpmos.roles import Role
from passports import grants
from passports.attributes import Tier
from passports.models import Passport
from scada import quality
from tests.conftest import bearer
from tests.factories_passports_api import a_bpan, register
from tests.test_passport_tiers import (
    ANONYMOUS,
    EXPECTED_TIERS,
    SENTINELS,
    sentinel_pack,
)

pytestmark = pytest.mark.django_db

LAB_REPORT = "https://lab.example/leak-lims-authority-report.pdf"
LAB_TEXT = "leak-lims-authority-report"
# (caller name, role or ANONYMOUS, holds a grant for the pack)
CALLERS = [(str(role), role, False) for role in EXPECTED_TIERS] + [
    ("anonymous+grant", ANONYMOUS, True),
    ("operator+grant", Role.OPERATOR, True),
    ("planner+grant", Role.PLANNER, True),
]
# The routes on which a grant opens legitimate interest (the registry's
# detail is the passport detail).
GRANT_ROUTES = ("attributes", "export", "detail", "registry-detail")


@pytest.fixture
def pack(make_user) -> Passport:
    return sentinel_pack(make_user)


@pytest.fixture
def lab_pack(make_user, pack) -> Passport:
    """A second pack whose test report came from the LIMS."""
    boss = make_user(Role.SUPERVISOR, username="walk-lab")
    lab = register(boss, "PACK-WALK-LAB01", bpan=a_bpan("00091"))
    report = quality.lims_results_apply(
        results=[
            {
                "serial": lab.serial,
                "test_name": "Type test",
                "passed": True,
                "values": {"resultOfTestReport": LAB_REPORT, "ir_mohm": 0.8},
                "tested_at": datetime.now(UTC),
            }
        ],
        source=quality.SOURCE_API,
        actor=boss,
    )
    assert report.applied == 1, report.rejected
    lab.refresh_from_db()
    assert lab.test_report == LAB_REPORT
    return lab


def routes(pack: Passport, lab: Passport) -> list[tuple[str, str, str]]:
    """(name, kind, path) of every route answering with passport data."""
    out = []
    for p in (pack, lab):
        ident = str(p.uuid)
        out += [
            ("detail", "api", f"/api/passports/{ident}"),
            ("detail", "api", f"/api/passports/{p.serial}"),
            ("public", "api", f"/api/passports/{ident}/public"),
            ("attributes", "api", f"/api/passports/{ident}/attributes"),
            ("export", "api", f"/api/passports/{ident}/export?format=batterypass"),
            ("export", "api", f"/api/passports/{ident}/export?format=aas"),
            ("completeness", "api", f"/api/passports/{ident}/completeness"),
            ("conformity", "api", f"/api/passports/{ident}/conformity"),
            ("ledger", "api", f"/api/passports/{ident}/ledger"),
            ("genealogy", "api", f"/api/passports/{ident}/genealogy"),
            ("telemetry", "api", f"/api/passports/{ident}/telemetry"),
            ("provisioning", "api", f"/api/passports/{ident}/provisioning"),
            ("registry-detail", "api", f"/api/registry/{ident}"),
            ("lookup", "api", f"/api/passports/lookup?identifier={p.serial}"),
            ("verify", "api", f"/api/passports/verify?identifier={ident}"),
            ("page", "page", f"/p/{ident}"),
            ("admin", "page", f"/admin/passports/passport/{p.pk}/change/"),
        ]
    year = datetime.now(UTC).year
    period = f"from={year}-01-01&to={year}-12-31"
    out += [
        ("list", "api", "/api/passports"),
        ("list", "api", f"/api/passports?search={pack.serial}"),
        ("registry", "api", "/api/registry"),
        ("grants", "api", "/api/passports/grants"),
        ("dispatchable", "api", "/api/live-products/dispatchable"),
        ("lifecycle", "api", "/api/products/lifecycle"),
        ("move-to-past", "api", "/api/products/move-to-past"),
        ("dashboard", "api", "/api/dashboard/status"),
        ("dashboard", "api", "/api/dashboard/summary"),
        ("dashboard", "api", "/api/dashboard/trends"),
        ("dashboard", "api", "/api/dashboard/distributions"),
        ("logs", "api", "/api/logs"),
        ("logs", "api", "/api/logs?source=ledger"),
        ("logs", "api", "/api/logs/export"),
        ("lims", "api", "/api/lims/results"),
        ("reports", "api", f"/api/reports/passport-ledger-extract/preview?{period}"),
        (
            "reports",
            "api",
            f"/api/reports/passport-ledger-extract/download?format=csv&{period}",
        ),
        ("reports", "api", f"/api/reports/audit-extract/preview?{period}"),
        ("compliance", "api", "/api/compliance/score"),
        ("compliance", "api", "/api/compliance/epr"),
        ("compliance", "api", "/api/compliance/returns"),
        ("board", "page", "/board/dispatch/"),
        ("admin", "page", "/admin/passports/passport/"),
        ("admin", "page", "/admin/passports/passportevent/"),
        ("admin", "page", "/admin/scada/limsresult/"),
        ("admin", "page", "/admin/passports/telemetryreading/"),
    ]
    return out


def fetch(kind: str, path: str, user, token: str | None) -> tuple[int, str]:
    extra = {grants.HEADER: token} if token else {}
    if kind == "api":
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    else:
        client = Client()
        if user is not None:
            client.force_login(user)
    response = client.get(path, **extra)
    body = b"".join(response.streaming_content) if response.streaming else None
    return response.status_code, (body or response.content).decode(errors="replace")


def allowed(role, granted: bool, route: str) -> set[Tier]:
    tiers = set(EXPECTED_TIERS[role])
    if granted and route in GRANT_ROUTES:
        tiers.add(Tier.LEGITIMATE_INTEREST)
    return tiers


def issue_grant(make_user, pack: Passport) -> str:
    admin = make_user(Role.ADMIN, username="walk-admin")
    _, token = grants.grant_issue(party="Recycler AG", passport=pack, actor=admin)
    return token


@pytest.mark.parametrize(
    ("name", "role", "granted"), CALLERS, ids=[c[0] for c in CALLERS]
)
def test_no_route_leaks_a_tier_the_caller_lacks(
    make_user, pack, lab_pack, name, role, granted
):
    user = None if role == ANONYMOUS else make_user(role, username=f"walk-{name}")
    token = issue_grant(make_user, pack) if granted else None
    texts = {tier: [text for _, text in s.values()] for tier, s in SENTINELS.items()}
    texts[Tier.AUTHORITY].append(LAB_TEXT)
    leaks, answered = [], 0
    for route, kind, path in routes(pack, lab_pack):
        status, body = fetch(kind, path, user, token)
        assert status < 500, (path, status)
        answered += status == 200
        for tier, found in texts.items():
            if tier not in allowed(role, granted, route):
                leaks += [(path, str(tier), t) for t in found if t in body]
    assert leaks == []
    assert answered >= 5


@pytest.mark.parametrize(
    ("name", "role"), [("anonymous", ANONYMOUS), ("operator", Role.OPERATOR)]
)
def test_a_grant_opens_its_routes_for_its_passport_only(
    make_user, pack, lab_pack, name, role
):
    # The positive control: the holder sees legitimate interest where a grant
    # counts, and a grant for one pack opens nothing of another (403).
    user = None if role == ANONYMOUS else make_user(role, username=f"holder-{name}")
    token = issue_grant(make_user, pack)
    status, body = fetch("api", f"/api/passports/{pack.uuid}/attributes", user, token)
    assert status == 200
    assert "LeakCathodeOxide" in body
    assert "918273" in body
    assert "leak-authority-test-report" not in body
    status, body = fetch(
        "api", f"/api/passports/{lab_pack.uuid}/attributes", user, token
    )
    assert status == 403
    assert "grant_invalid" in body
    if user is not None:  # the detail needs a sign-in
        status, body = fetch("api", f"/api/passports/{pack.uuid}", user, token)
        assert status == 200
        assert '"restricted":true' in body.replace(" ", "")
        assert "LeakCathodeOxide" in body
        status, body = fetch("api", f"/api/passports/{lab_pack.uuid}", user, token)
        assert status == 403


def test_the_lab_report_reaches_the_authorities_only(make_user, lab_pack):
    path = f"/api/passports/{lab_pack.uuid}/attributes"
    for role, shown in [
        (Role.AUDITOR, True),
        (Role.ADMIN, True),
        (Role.SUPERVISOR, False),
        (Role.PLANT_HEAD, False),
    ]:
        status, body = fetch("api", path, make_user(role), None)
        assert status == 200
        assert (LAB_TEXT in body) is shown, role
