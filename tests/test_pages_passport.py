"""The passport page, ``/p/<uuid or BPAN>`` (passports/pages.py; docs/pages.md):
public attributes for anyone, restricted ones only for a signed-in role the
passport API's rule allows, a QR code of the page's own address, a 404 page
for an unknown identifier; and in a real browser, anonymously, no restricted
attribute on the page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import segno
from django.test import Client
from django.utils import timezone

from bpmos import access
from bpmos.roles import Role
from passports import pages, telemetry
from passports.api import serializers as passport_s
from passports.models import PUBLIC_FIELDS, RESTRICTED_FIELDS
from tests.conftest import PASSWORD
from tests.factories_passports import register
from tests.support_browser import WALL, save_screens

# Values that only the restricted fields hold, so their text can be looked for.
RESTRICTED_VALUES = {
    "barcode": "BC-SECRET-417",
    "rfid": "E2801160600002084E9F6A41",
    "cathode_material": "Cathode-LFP-Secret",
    "anode_material": "Anode-Graphite-Secret",
    "electrolyte": "Electrolyte-LiPF6-Secret",
}
RESTRICTED_NAMES = {name for names in RESTRICTED_FIELDS.values() for name in names}
PUBLIC_NAMES = {name for names in PUBLIC_FIELDS.values() for name in names}


def make_passport(actor=None):
    passport = register(
        "pack",
        actor=actor,
        serial="PK-2026-000417",
        barcode=RESTRICTED_VALUES["barcode"],
        rfid=RESTRICTED_VALUES["rfid"],
        cathode_material=RESTRICTED_VALUES["cathode_material"],
        anode_material=RESTRICTED_VALUES["anode_material"],
        electrolyte=RESTRICTED_VALUES["electrolyte"],
        material_composition={"Cobaltite": 12.5},
        recycled_content={"Recyclium": 7.25},
        critical_raw_materials=["Lithium", "Graphite"],
        carbon_footprint_class="B",
    )
    telemetry.telemetry_ingest(
        passport_id=passport.pk,
        rows=[
            {
                "ts": (timezone.now() - timedelta(minutes=5)).isoformat(),
                "sohPercent": 97.5,
                "socPercent": 64.0,
                "temperatureC": 23.5,
            }
        ],
        actor=actor,
    )
    passport.refresh_from_db()
    assert passport.bpan
    assert passport.soh_percent == 97.5
    return passport


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def without_qr(body: str) -> str:
    """The page without its QR code's SVG (whose path is full of numbers)."""
    return re.sub(r"<svg.*?</svg>", "", body, flags=re.S)


def shown_fields(body: str) -> set[str]:
    return set(re.findall(r'<div class="attr[^"]*" data-field="([^"]+)"', body))


def shown_groups(body: str) -> set[str]:
    return set(re.findall(r'data-group="([^"]+)"', body))


@pytest.fixture
def passport(db, make_user):
    return make_passport(make_user(Role.SUPERVISOR))


# --- through Django's client ---------------------------------------------------------


def test_anonymous_sees_the_public_attributes_and_no_restricted_one(passport):
    response = Client().get(f"/p/{passport.uuid}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = without_qr(response.content.decode())
    # The fields shown are exactly the public ones, group by group.
    assert shown_fields(body) == PUBLIC_NAMES
    assert shown_groups(body) == set(PUBLIC_FIELDS)
    for group, names in RESTRICTED_FIELDS.items():
        for name in names:
            assert f'data-field="{name}"' not in body, (group, name)
            assert pages.FIELD_LABELS.get(name, "\0") not in body, name
    for name, value in RESTRICTED_VALUES.items():
        assert value not in body, name
        assert value.lower() not in body.lower(), name
    for secret in ("Cobaltite", "Recyclium", "97.5", "64.0", "23.5"):
        assert secret not in body, secret
    # Public values are there.
    for text in ("PK-2026-000417", passport.bpan, "Lithium, Graphite", "Pune Plant 1"):
        assert text in body, text
    assert "Includes restricted data" not in body


def test_the_page_shows_what_the_public_api_shows(passport):
    """Same groups, same keys, same values as GET /api/passports/{id}/public."""
    api = Client().get(f"/api/passports/{passport.uuid}/public").json()
    body = Client().get(f"/p/{passport.uuid}").content.decode()
    for group in PUBLIC_FIELDS:
        for key, value in api[group].items():
            name = passport_s.snake(key)
            shown = re.search(
                rf'data-field="{name}">\s*<dt>.*?</dt>\s*<dd>(.*?)</dd>', body, re.S
            )
            assert shown, (group, key)
            assert html.unescape(shown.group(1)) == pages._shown(value), key
    restricted_only = set(RESTRICTED_FIELDS) - set(PUBLIC_FIELDS)
    assert not set(api) & restricted_only
    assert not shown_groups(body) & restricted_only


@pytest.mark.parametrize("role", list(Role))
def test_restricted_attributes_follow_the_apis_rule(passport, make_user, role):
    body = signed_in(make_user(role)).get(f"/p/{passport.uuid}").content.decode()
    allowed = access.allows(access.ACTIONS["passport-restricted"], role)
    if allowed:
        assert shown_fields(body) == PUBLIC_NAMES | RESTRICTED_NAMES
        assert shown_groups(body) == set(PUBLIC_FIELDS) | set(RESTRICTED_FIELDS)
        for value in RESTRICTED_VALUES.values():
            assert value in body
        for text in ("Cobaltite: 12.5 %", "Recyclium: 7.25 %", ">97.5<"):
            assert text in body
        assert "Includes restricted data" in body
    else:
        assert shown_fields(body) == PUBLIC_NAMES
        for value in RESTRICTED_VALUES.values():
            assert value not in body
    # The design's roles: supervisors see them, the shop floor does not.
    if role == Role.SUPERVISOR:
        assert allowed
    if role in (Role.OPERATOR, Role.PLANNER):
        assert not allowed


def test_bpan_and_uuid_both_resolve_to_the_same_page(passport):
    bpan = passport.bpan
    forms = [
        str(passport.uuid),
        str(passport.uuid).upper(),
        bpan,
        bpan.lower(),
        f"{bpan[:5]}-{bpan[5:11]}-{bpan[11:15]}-{bpan[15:]}",
        f"{passport.uuid}/",
    ]
    for form in forms:
        response = Client().get(f"/p/{form}")
        assert response.status_code == 200, form
        assert 'data-field="serial"' in response.content.decode()
        assert "PK-2026-000417" in response.content.decode(), form


def test_unknown_identifiers_are_a_404_page(passport):
    for form in (
        "00000000-0000-0000-0000-000000000000",
        "BPMXX0000000000000000",
        "nothing-here",
        # Restricted identifiers do not open the public page (they would tell
        # a stranger whose barcode that is), as the public API.
        RESTRICTED_VALUES["barcode"],
        RESTRICTED_VALUES["rfid"],
        "x" * 90,
    ):
        response = Client().get(f"/p/{form}")
        assert response.status_code == 404, form
        assert response["Content-Type"].startswith("text/html"), form
        body = response.content.decode()
        assert "No such passport" in body
        assert "PK-2026-000417" not in body


def test_the_qr_code_holds_the_pages_absolute_address(passport):
    bpan_response = Client().get(f"/p/{passport.bpan}")
    body = bpan_response.content.decode()
    url = f"http://testserver/p/{passport.uuid}"
    expected = segno.make(url, **pages.QR_MAKE).svg_inline(**pages.QR_SVG)
    assert expected in body
    assert f">{url}</figcaption>" in body
    # The comparison tells addresses apart: another address draws another code.
    other = segno.make(url + "x", **pages.QR_MAKE).svg_inline(**pages.QR_SVG)
    assert other != expected
    assert other not in body
    # The code is what the page itself says its address is, and that address
    # opens this passport.
    assert pages.qr_svg(url) == expected
    assert Client().get(url.removeprefix("http://testserver")).status_code == 200
    # Behind https (a proxy that says so) the address is https.
    secure = Client().get(f"/p/{passport.uuid}", secure=True).content.decode()
    assert pages.qr_svg(f"https://testserver/p/{passport.uuid}") in secure


def test_every_role_may_open_it_and_anonymous_too():
    assert access.PAGES["passport-page"] is access.PUBLIC


# --- in a real browser ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_anonymous_browser_sees_no_restricted_attribute(
    browser,
    live_server,
    make_user,
):
    passport = make_passport(make_user(Role.SUPERVISOR))
    context = browser.new_context(base_url=live_server.url, viewport=WALL)
    try:
        page = context.new_page()
        page.goto(f"/p/{passport.bpan}")
        page.wait_for_selector("#passport-qr svg")
        text = page.inner_text("body")
        for name, value in RESTRICTED_VALUES.items():
            assert value.lower() not in text.lower(), name
        for secret in ("Cobaltite", "Recyclium", "97.5", "State of health"):
            assert secret not in text, secret
        for name in RESTRICTED_NAMES:
            assert page.locator(f'[data-field="{name}"]').count() == 0, name
        assert "PK-2026-000417" in text
        assert page.locator(".attr").count() == len(PUBLIC_NAMES)
        save_screens(page, "passport")
    finally:
        context.close()
