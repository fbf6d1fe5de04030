"""The passport page, ``/p/<uuid or BPAN>`` (passports/pages.py; docs/pages.md):
public attributes for anyone, restricted ones only for a signed-in role the
passport API's rule allows, a QR code of the page's own address, a 404 page
for an unknown identifier; and in a real browser, anonymously, no restricted
attribute on the page."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
import segno
from django.test import Client, RequestFactory
from django.utils import timezone

from bpmos import access
from bpmos.roles import Role
from passports import pages, qr, secondlife, telemetry
from passports.api import serializers as passport_s
from passports.models import PUBLIC_FIELDS, RESTRICTED_FIELDS, Kind, State
from tests.conftest import PASSWORD
from tests.factories_passports import path_to, record, register
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


# --- the EU status, second life and the printed QR codes -----------------------------

GTIN = "09506000134352"  # GS1's example GTIN-14 (check digit 2)
SECOND_OPERATOR = "Second Life Storage Pvt Ltd"


def second_life_pair(actor, status="Repurposed", **extra):
    """A pack in service holding the restricted values (and a GTIN), given a
    second life: returns (old, new), both re-read."""
    old = register(
        "pack",
        actor=actor,
        serial="PK-2026-000501",
        gtin=GTIN,
        barcode=RESTRICTED_VALUES["barcode"],
        rfid=RESTRICTED_VALUES["rfid"],
        cathode_material=RESTRICTED_VALUES["cathode_material"],
        anode_material=RESTRICTED_VALUES["anode_material"],
        electrolyte=RESTRICTED_VALUES["electrolyte"],
        material_composition={"Cobaltite": 12.5},
    )
    for kind in path_to(Kind.PACK, State.IN_SERVICE):
        old = record(old, kind, actor=actor)
    data = {
        "status": status,
        "serial": "PK-2026-000501-R",
        "operator": SECOND_OPERATOR,
        **extra,
    }
    if status != "Reused":
        data.update(manufacturer_code="SLS", plant_code="2")
    new, _, _ = secondlife.passport_second_life(
        passport_id=old.pk, data=data, actor=actor
    )
    old.refresh_from_db()
    new.refresh_from_db()
    return old, new


def lineage_links(body: str) -> dict[str, list[str]]:
    """The second-life links on a page: ``predecessor``/``successor`` -> hrefs."""
    found: dict[str, list[str]] = {}
    for which, href in re.findall(
        r'<li data-link="(predecessor|successor)"><a href="([^"]+)"', body
    ):
        found.setdefault(which, []).append(href)
    return found


def printed_images(body: str) -> dict[str, str]:
    """The printed QR codes' images on a page: symbol -> the image's address."""
    return dict(
        re.findall(
            r'<figure class="qr printed" data-symbol="([^"]+)">\s*<img src="([^"]+)"',
            body,
        )
    )


def eu_status(body: str) -> str:
    found = re.search(r'id="battery-status" data-battery-status="([^"]+)"', body)
    assert found, "no EU status on the page"
    return found.group(1)


@pytest.fixture
def pair(db, make_user):
    return second_life_pair(make_user(Role.SUPERVISOR))


def test_an_original_battery_shows_its_eu_status_and_no_second_life(passport):
    body = Client().get(f"/p/{passport.uuid}").content.decode()
    assert eu_status(body) == "Original"
    assert "EU status: Original" in body
    assert 'id="second-life"' not in body
    assert lineage_links(body) == {}


def test_the_pages_link_a_superseded_battery_and_its_successor_both_ways(pair):
    """Anonymous, through the HTTP client: the old page links to the new one,
    the new one back, and each link opens that passport's public page."""
    old, new = pair
    client = Client()
    old_body = client.get(f"/p/{old.uuid}").content.decode()
    assert old.state == State.SUPERSEDED
    assert eu_status(old_body) == "Repurposed"
    assert 'id="superseded-notice"' in old_body
    assert lineage_links(old_body) == {"successor": [f"/p/{new.uuid}"]}

    response = client.get(lineage_links(old_body)["successor"][0])
    assert response.status_code == 200
    new_body = response.content.decode()
    assert "PK-2026-000501-R" in new_body
    assert eu_status(new_body) == "Repurposed"
    assert 'id="superseded-notice"' not in new_body
    assert lineage_links(new_body) == {"predecessor": [f"/p/{old.uuid}"]}
    # The link shows the other passport's public identity and status.
    assert re.search(
        rf'data-link="predecessor"><a href="/p/{old.uuid}" rel="prev">'
        rf"{old.serial}</a> · BPAN <span class=\"mono\">{old.bpan}</span>"
        r" · EU status Repurposed",
        new_body,
    )

    back = client.get(lineage_links(new_body)["predecessor"][0])
    assert back.status_code == 200
    assert lineage_links(back.content.decode()) == {"successor": [f"/p/{new.uuid}"]}


def test_the_second_life_part_shows_public_data_only(pair, make_user):
    """The successor inherits the old pack's restricted attributes: neither
    page shows them to the public, nor does the second-life part to anyone."""
    old, new = pair
    for passport in (old, new):
        body = without_qr(Client().get(f"/p/{passport.uuid}").content.decode())
        assert shown_fields(body) == PUBLIC_NAMES
        for name, value in RESTRICTED_VALUES.items():
            assert value.lower() not in body.lower(), (passport.serial, name)
        assert "Cobaltite" not in body
    # A restricted reader sees the restricted groups, but the second-life part
    # and the printed codes stay the same public text.
    supervisor = signed_in(make_user(Role.SUPERVISOR, username="sl-sup"))
    for passport in (old, new):
        public = Client().get(f"/p/{passport.uuid}").content.decode()
        restricted = supervisor.get(f"/p/{passport.uuid}").content.decode()
        for part in ("second-life", "printed-codes"):
            pattern = rf'<section class="card [^"]+" id="{part}".*?</section>'
            a = re.search(pattern, public, re.S)
            b = re.search(pattern, restricted, re.S)
            assert (a and a.group(0)) == (b and b.group(0)), part
            if a:
                for value in RESTRICTED_VALUES.values():
                    assert value not in a.group(0)


def test_a_reused_pack_shows_the_status_and_its_bpan_on_the_current_page(make_user):
    old, new = second_life_pair(make_user(Role.SUPERVISOR), "Reused")
    assert old.bpan is None
    assert new.bpan
    old_body = Client().get(f"/p/{old.uuid}").content.decode()
    new_body = Client().get(f"/p/{new.bpan}").content.decode()  # the pack's number
    assert eu_status(old_body) == eu_status(new_body) == "Reused"
    assert lineage_links(new_body) == {"predecessor": [f"/p/{old.uuid}"]}
    # The BPAN left with the pack: its code is on the new page only.
    assert "bpan" not in printed_images(old_body)
    assert "bpan" in printed_images(new_body)


def test_an_end_of_life_battery_shows_waste(passport):
    for kind in path_to(Kind.PACK, State.END_OF_LIFE):
        passport = record(passport, kind)
    body = Client().get(f"/p/{passport.uuid}").content.decode()
    assert eu_status(body) == "Waste"


def test_the_printed_qr_codes_are_the_apis_images_of_the_right_text(pair):
    """Digital Link (it has a GTIN) and BPAN (it has one): each image address
    answers, through the HTTP client, the QR code of exactly what the battery's
    label holds."""
    old, _ = pair
    body = Client().get(f"/p/{old.uuid}").content.decode()
    images = printed_images(body)
    assert list(images) == ["digital-link", "bpan"]
    uri = f"http://testserver/01/{GTIN}/21/{old.serial}"
    assert f'<span class="mono">{uri}</span>' in body
    request = RequestFactory().get("/")
    payload = json.dumps(
        qr.bpan_payload(request, old), separators=(",", ":"), ensure_ascii=False
    )
    assert json.loads(payload)["bpan"] == old.bpan
    for symbol, text in (("digital-link", uri), ("bpan", payload)):
        src = html.unescape(images[symbol])
        assert src == f"/api/passports/{old.uuid}/qr/{symbol}?image=svg"
        response = Client().get(src)
        assert response.status_code == 200, symbol
        assert response["Content-Type"] == "image/svg+xml"
        assert response.content == qr.draw(text, "svg"), symbol
        assert response.content != qr.draw(text + "x", "svg")
        png = Client().get(src.replace("image=svg", "image=png"))
        assert png.status_code == 200
        assert png.content == qr.draw(text, "png"), symbol
    # The Digital Link resolves to this page.
    resolved = Client().get(uri.removeprefix("http://testserver"))
    assert (resolved.status_code, resolved["Location"]) == (307, f"/p/{old.uuid}")


def test_only_the_codes_a_battery_has_are_shown(pair):
    _, new = pair
    # No GTIN given to the successor (a GTIN is the product's, not inherited):
    # only its BPAN's code.
    assert not new.gtin
    assert list(printed_images(Client().get(f"/p/{new.uuid}").content.decode())) == [
        "bpan"
    ]
    cell = register(Kind.CELL, serial="CL-2026-000777")
    body = Client().get(f"/p/{cell.uuid}").content.decode()
    assert printed_images(body) == {}
    assert 'id="printed-codes"' not in body
    assert list(pages.QR_SYMBOLS) == list(qr.SYMBOLS)


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


@pytest.mark.django_db(transaction=True)
def test_anonymous_browser_follows_the_second_life_links_both_ways(
    browser,
    live_server,
    make_user,
):
    old, new = second_life_pair(make_user(Role.SUPERVISOR))
    context = browser.new_context(base_url=live_server.url, viewport=WALL)
    try:
        page = context.new_page()
        page.goto(f"/p/{old.uuid}")
        assert page.text_content("#battery-status") == "EU status: Repurposed"
        assert page.locator("#superseded-notice").is_visible()
        # The printed codes load as images (the QR API answered them).
        for symbol in ("digital-link", "bpan"):
            image = page.locator(f'figure[data-symbol="{symbol}"] img')
            image.wait_for()
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0",
                arg=image.element_handle(),
            )
        save_screens(page, "passport-superseded")
        page.click('[data-link="successor"] a')
        page.wait_for_url(f"**/p/{new.uuid}")
        assert "PK-2026-000501-R" in page.inner_text("h1")
        assert page.text_content("#battery-status") == "EU status: Repurposed"
        text = page.inner_text("body")
        for name, value in RESTRICTED_VALUES.items():
            assert value.lower() not in text.lower(), name
        page.click('[data-link="predecessor"] a')
        page.wait_for_url(f"**/p/{old.uuid}")
        assert "PK-2026-000501" in page.inner_text("h1")
    finally:
        context.close()
