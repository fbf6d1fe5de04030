"""GTIN and the GS1 Digital Link of a battery (passports/gs1.py), the resolver
``/01/{gtin}/21/{serial}`` (passports/pages.py) and the QR code endpoints
(passports/qr.py): over the live server with a real HTTP client, on the
project's database.

The QR images are checked against segno's own symbol for the expected text
(the SVG byte for byte, the PNG module by module through Pillow) and, where
OpenCV is installed (requirements-dev.txt), decoded by its QR reader: no test
decodes a symbol by hand.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bpmos.roles import Role
from elog.models import AuditRecord
from passports import bpan as bpan_rules
from passports import gs1, qr
from passports.models import Passport
from tests.conftest import bearer
from tests.factories_passports import register

GTIN13 = "9506000134352"  # GS1's example GTIN, check digit 2
GTIN14 = "09506000134352"
BAD_GTIN = "9506000134353"


# --- identifiers ---------------------------------------------------------------


def test_gtin_is_normalized_to_fourteen_digits():
    assert gs1.gtin_normalize(GTIN13) == GTIN14
    assert gs1.gtin_normalize("96385074") == "00000096385074"  # GTIN-8
    assert gs1.gtin_normalize("036000291452") == "00036000291452"  # UPC-A


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (BAD_GTIN, "check digit"),
        ("95060001343", "8, 12, 13 or 14 digits; this has 11"),
        ("95060001343A", "digits only"),
        ("", "digits only"),
    ],
)
def test_gtin_refused_with_reason(value, problem):
    with pytest.raises(gs1.GS1Error, match=problem):
        gs1.gtin_normalize(value)


def test_serial_must_be_a_gs1_serial():
    assert gs1.serial_check("PK-2026/001") == "PK-2026/001"
    with pytest.raises(gs1.GS1Error, match="1 to 20"):
        gs1.serial_check("X" * 21)
    with pytest.raises(gs1.GS1Error):
        gs1.serial_check("PK 001")  # a space is not in character set 82


def test_digital_link_percent_encodes_the_serial():
    assert (
        gs1.digital_link_uri(domain="https://id.example/", gtin=GTIN14, serial="A/B%1")
        == f"https://id.example/01/{GTIN14}/21/A%2FB%251"
    )


@pytest.mark.django_db
def test_register_stores_gtin_fourteen_digits():
    pack = register("pack", gtin=GTIN13, serial="PK-GS1-0001")
    pack.refresh_from_db()
    assert pack.gtin == GTIN14


@pytest.mark.django_db
def test_register_refuses_bad_check_digit_and_writes_nothing():
    from bpmos.errors import InvalidInput

    before = (Passport.objects.count(), AuditRecord.objects.count())
    with pytest.raises(InvalidInput) as caught:
        register("pack", gtin=BAD_GTIN, serial="PK-GS1-0002")
    assert list(caught.value.details) == ["gtin"]
    assert "check digit" in caught.value.details["gtin"][0]
    assert (Passport.objects.count(), AuditRecord.objects.count()) == before


@pytest.mark.django_db
def test_register_refuses_serial_too_long_for_a_gtin():
    from bpmos.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        register("pack", gtin=GTIN13, serial="PK-" + "9" * 20)
    assert list(caught.value.details) == ["serial"]
    assert not Passport.objects.filter(gtin=GTIN14).exists()


def test_register_over_http_names_gtin_in_400(http, make_user):
    user = make_user(Role.SUPERVISOR)
    body = {
        "kind": "Pack",
        "serial": "PK-GS1-HTTP",
        "model": "PK-48V",
        "manufacturer": "BPM Energy",
        "site": "Pune",
        "chemistry": "LFP",
        "ratedCapacityAh": 100,
        "nominalVoltageV": 48,
        "energyKwh": 5.12,
        "gtin": BAD_GTIN,
    }
    response = http.post("/api/passports", json=body, headers=bearer(user))
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["details"]) == ["gtin"]
    assert not Passport.objects.filter(serial="PK-GS1-HTTP").exists()
    response = http.post(
        "/api/passports", json={**body, "gtin": GTIN13}, headers=bearer(user)
    )
    assert response.status_code == 201
    assert response.json()["identity"]["gtin"] == GTIN14


# --- the resolver --------------------------------------------------------------


def _passport_gs1(serial="PK-GS1-0007"):
    return register("pack", gtin=GTIN13, serial=serial, lot="LOT-9")


def test_digital_link_redirects_to_the_public_page(http, db):
    pack = _passport_gs1()
    for gtin in (GTIN14, GTIN13):
        response = http.get(f"/01/{gtin}/21/PK-GS1-0007")
        assert response.status_code == 307, gtin
        assert response.headers["location"] == f"/p/{pack.uuid}"
    # The page it leads to is the passport's.
    page = http.get(f"/p/{pack.uuid}")
    assert page.status_code == 200
    assert "PK-GS1-0007" in page.text


def test_digital_link_with_key_qualifiers(http, db):
    pack = _passport_gs1()
    ok = http.get(f"/01/{GTIN14}/22/V2/10/LOT-9/21/PK-GS1-0007")
    assert ok.status_code == 307
    assert ok.headers["location"] == f"/p/{pack.uuid}"
    assert http.get(f"/01/{GTIN14}/10/LOT-8/21/PK-GS1-0007").status_code == 404
    # GS1 fixes the qualifiers' order: a lot after the serial is no route.
    assert http.get(f"/01/{GTIN14}/21/PK-GS1-0007/10/LOT-9").status_code == 404


def test_digital_link_percent_encoded_serial(http, db):
    pack = _passport_gs1(serial="PK/GS1%8")
    uri = gs1.digital_link_path(gtin=GTIN14, serial="PK/GS1%8")
    response = http.get(uri)
    assert response.status_code == 307
    assert response.headers["location"] == f"/p/{pack.uuid}"


def test_digital_link_json_client_goes_to_the_public_api(http, db):
    pack = _passport_gs1()
    response = http.get(
        f"/01/{GTIN14}/21/PK-GS1-0007", headers={"Accept": "application/json"}
    )
    assert response.status_code == 307
    assert response.headers["location"] == f"/api/passports/{pack.uuid}/public"
    body = http.get(response.headers["location"]).json()
    assert body["id"] == str(pack.uuid)
    assert body["identity"]["gtin"] == GTIN14


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (f"/01/{BAD_GTIN}/21/PK-GS1-0007", "check digit"),
        ("/01/95060001343/21/PK-GS1-0007", "8, 12, 13 or 14 digits"),
        (f"/01/{GTIN14}", "names a product"),
        (f"/01/{GTIN14}/21/{'X' * 21}", "1 to 20"),
    ],
)
def test_malformed_digital_link_is_400_saying_why(http, db, path, problem):
    response = http.get(path)
    assert response.status_code == 400
    assert problem in response.text


def test_unknown_battery_is_404(http, db):
    _passport_gs1()
    assert http.get(f"/01/{GTIN14}/21/PK-GS1-9999").status_code == 404
    assert http.get("/01/96385074/21/PK-GS1-0007").status_code == 404


# --- QR codes --------------------------------------------------------------------


def _matrix_of_png(data: bytes) -> list[list[int]]:
    """The modules of a PNG drawn with ``qr.QR_DRAW`` (scale, border), read
    pixel by pixel with Pillow: dark = 1."""
    image = Image.open(io.BytesIO(data)).convert("L")
    scale, border = qr.QR_DRAW["scale"], qr.QR_DRAW["border"]
    size = image.width // scale - 2 * border
    return [
        [
            1
            if image.getpixel(
                ((border + x) * scale + scale // 2, (border + y) * scale + scale // 2)
            )
            < 128
            else 0
            for x in range(size)
        ]
        for y in range(size)
    ]


def _segno_matrix(text: str) -> list[list[int]]:
    return [[1 if cell else 0 for cell in row] for row in qr.make(text).matrix]


def _decoded(png: bytes) -> str:
    """What OpenCV's QR readers read in ``png``: as served, else enlarged
    (nearest neighbour keeps the modules sharp). Its classic detector misses
    some symbols (about 1 in 150 of the Digital Link URIs a test server's
    port gives); the ArUco-based one reads those, so both are tried."""
    import cv2
    import numpy

    pixels = numpy.array(Image.open(io.BytesIO(png)).convert("L"))
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        for factor in (1, 2, 3):
            image = cv2.resize(
                pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST
            )
            text, _points, _straight = detector.detectAndDecode(image)
            if text:
                return text
    return ""


def test_digital_link_qr_svg_and_png(http, live_server, db):
    pack = _passport_gs1()
    expected = f"{live_server.url}/01/{GTIN14}/21/PK-GS1-0007"
    svg = http.get(f"/api/passports/{pack.uuid}/qr/digital-link")
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    own = io.BytesIO()
    qr.make(expected).save(own, kind="svg", **qr.QR_DRAW)
    assert svg.content == own.getvalue()

    png = http.get(f"/api/passports/{pack.serial}/qr/digital-link?image=png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert _matrix_of_png(png.content) == _segno_matrix(expected)
    assert _matrix_of_png(png.content) != _segno_matrix(expected + "X")


def test_digital_link_domain_from_settings(http, settings, db):
    settings.BPMOS_DIGITAL_LINK_DOMAIN = "https://id.bpm-energy.example"
    pack = _passport_gs1()
    png = http.get(f"/api/passports/{pack.uuid}/qr/digital-link?image=png")
    expected = f"https://id.bpm-energy.example/01/{GTIN14}/21/PK-GS1-0007"
    assert _matrix_of_png(png.content) == _segno_matrix(expected)


def test_bpan_qr_carries_bpan_static_sections_and_link(http, live_server, db):
    pack = register(
        "pack",
        gtin=GTIN13,
        serial="PK-GS1-0011",
        cathode_material="Cathode-Secret",
        material_composition={"Cobaltite": 12.5},
        critical_raw_materials=["lithium", "graphite"],
        hazardous_substances=["LiPF6"],
        carbon_footprint_kg_co2e_per_kwh=61.4,
        carbon_footprint_class="B",
    )
    png = http.get(f"/api/passports/{pack.bpan}/qr/bpan?image=png")
    assert png.status_code == 200
    text = qr.content(_Request(live_server.url), pack, "bpan")
    assert _matrix_of_png(png.content) == _segno_matrix(text)
    payload = json.loads(text)
    parts = bpan_rules.parse(pack.bpan)
    assert payload == {
        "bpan": pack.bpan,
        "BMI": {"country": "IN", "manufacturerCode": "BPM"},
        "BDS": {
            "chemistry": "LFP",
            "nominalVoltageV": 51.2,
            "ratedCapacityAh": 100,
            "energyKwh": 5.12,
            "model": "PACK-LFP",
        },
        "BI": {
            "serial": parts.serial,
            "manufactured": f"{parts.year:04d}-{parts.month:02d}",
            "plantCode": "P",
        },
        "BMCS": {
            "chemistry": "LFP",
            "criticalRawMaterials": ["lithium", "graphite"],
            "hazardousSubstances": ["LiPF6"],
        },
        "BCF": {"kgCo2ePerKwh": 61.4, "class": "B"},
        "link": f"{live_server.url}/01/{GTIN14}/21/PK-GS1-0011",
    }
    # Restricted attributes stay behind the link.
    assert "Cathode-Secret" not in text
    assert "Cobaltite" not in text


class _Request:
    """What ``qr`` reads of a request: the address it came to."""

    def __init__(self, base: str):
        self.base = base

    def build_absolute_uri(self, path: str) -> str:
        return self.base + path


def test_bpan_qr_without_gtin_links_the_page(http, live_server, db):
    pack = register("pack", serial="PK-GS1-0012")
    payload = json.loads(qr.content(_Request(live_server.url), pack, "bpan"))
    assert payload["link"] == f"{live_server.url}/p/{pack.uuid}"
    svg = http.get(f"/api/passports/{pack.uuid}/qr/bpan")
    assert svg.status_code == 200
    own = io.BytesIO()
    qr.make(json.dumps(payload, separators=(",", ":"))).save(
        own, kind="svg", **qr.QR_DRAW
    )
    assert svg.content == own.getvalue()


def test_qr_refusals(http, db):
    cell = register("cell", serial="C-GS1-0001", gtin=GTIN13)
    plain = register("pack", serial="PK-GS1-0013", barcode="BC-GS1-13")
    no_bpan = http.get(f"/api/passports/{cell.uuid}/qr/bpan")
    assert no_bpan.status_code == 404
    assert no_bpan.json()["code"] == "not_found"
    assert "no BPAN" in no_bpan.json()["error"]
    no_gtin = http.get(f"/api/passports/{plain.uuid}/qr/digital-link")
    assert no_gtin.status_code == 404
    assert "no GTIN" in no_gtin.json()["error"]
    bad_image = http.get(f"/api/passports/{cell.uuid}/qr/digital-link?image=gif")
    assert bad_image.status_code == 400
    assert bad_image.json()["details"] == {"image": ["One of svg, png."]}
    # The barcode is restricted: the public QR route does not answer to it.
    assert http.get("/api/passports/BC-GS1-13/qr/bpan").status_code == 404
    assert http.get(f"/api/passports/{cell.uuid}/qr/other").status_code == 404


def test_qr_pngs_decode_with_a_qr_reader(http, live_server, db):
    """A round trip through OpenCV's QR reader (opencv-python-headless,
    requirements-dev.txt; skipped where it is not installed)."""
    pytest.importorskip("cv2")
    pack = _passport_gs1()
    png = http.get(f"/api/passports/{pack.uuid}/qr/digital-link?image=png")
    assert _decoded(png.content) == f"{live_server.url}/01/{GTIN14}/21/PK-GS1-0007"
    png = http.get(f"/api/passports/{pack.uuid}/qr/bpan?image=png")
    payload = json.loads(_decoded(png.content))
    assert payload["bpan"] == pack.bpan
    assert payload["link"] == f"{live_server.url}/01/{GTIN14}/21/PK-GS1-0007"
