"""The QR codes of a passport, drawn by segno (SVG or PNG).

Two symbols (docs/passports.md, "Identifiers and QR codes"):

* ``digital-link``: the battery's GS1 Digital Link URI (``passports.gs1``),
  which the resolver (``/01/{gtin}/21/{serial}``) leads to the public passport
  page: the EU passport's "QR code linked to a unique identifier" (Art. 13(6),
  Art. 77(3)).
* ``bpan``: the Battery Pack Aadhaar QR code. The draft BPAN guidelines (MoRTH,
  January 2026, as summarised by Energetica India, 8 Jan 2026) give the number
  three layers: the 21 characters marked on the pack (public core data), a QR
  code "containing detailed static data, including technical specifications,
  material composition and carbon footprint", and server-held dynamic data
  (state of health, status, lifecycle events) for authorised parties. So the
  BPAN QR carries the BPAN, its static sections (BMI, BDS, BI decoded from the
  number; BMCS: chemistry, critical raw materials, hazardous substances; BCF:
  the carbon footprint and its class) and the link to the server layer (the
  Digital Link URI, else the passport page). The mass shares of materials are
  a legitimate-interest attribute of the EU passport (Annex XIII 2(a)), and a
  QR code on a pack is readable by anyone, so they stay behind the link; no
  dynamic data is in the symbol either (it would be stale the day it is
  printed). The draft fixes no encoding: the payload is compact JSON (UTF-8,
  byte mode), keys as below, so any QR reader yields a parseable text.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import segno
from django.conf import settings
from django.urls import reverse

from bpmos.errors import NotFound
from passports import bpan as bpan_rules
from passports import gs1
from passports.models import Passport

SYMBOLS = ("digital-link", "bpan")
FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
# Error correction M: readable with a smudge (as the passport page's code).
QR_MAKE: dict[str, Any] = {"error": "m", "micro": False}
QR_DRAW: dict[str, Any] = {"scale": 5, "border": 4, "dark": "#000", "light": "#fff"}


def link_domain(request) -> str:
    """Scheme and host the links are made on: ``BPMOS_DIGITAL_LINK_DOMAIN``,
    else where the request came to."""
    return settings.BPMOS_DIGITAL_LINK_DOMAIN or request.build_absolute_uri("/")


def digital_link(request, passport: Passport) -> str | None:
    """The passport's Digital Link URI, or None when it has no GTIN (a serial
    that cannot go with a GTIN is refused at registration)."""
    if not passport.gtin:
        return None
    return gs1.digital_link_uri(
        domain=link_domain(request), gtin=passport.gtin, serial=passport.serial
    )


def page_link(request, passport: Passport) -> str:
    """The public passport page's address (by UUID)."""
    return link_domain(request).rstrip("/") + reverse(
        "passport-page", args=[str(passport.uuid)]
    )


def _number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def bpan_payload(request, passport: Passport) -> dict[str, Any]:
    """What the BPAN QR code holds (see the module docstring)."""
    if not passport.bpan:
        raise NotFound("This passport has no BPAN (only packs carry one).")
    parts = bpan_rules.parse(passport.bpan)
    return {
        "bpan": parts.value,
        "BMI": {"country": parts.country, "manufacturerCode": parts.manufacturer},
        "BDS": {
            "chemistry": passport.chemistry,
            "nominalVoltageV": _number(passport.nominal_voltage_v),
            "ratedCapacityAh": _number(passport.rated_capacity_ah),
            "energyKwh": _number(passport.energy_kwh),
            "model": passport.model,
        },
        "BI": {
            "serial": parts.serial,
            "manufactured": f"{parts.year:04d}-{parts.month:02d}",
            "plantCode": parts.plant,
        },
        "BMCS": {
            "chemistry": passport.chemistry,
            "criticalRawMaterials": list(passport.critical_raw_materials),
            "hazardousSubstances": list(passport.hazardous_substances),
        },
        "BCF": {
            "kgCo2ePerKwh": _number(passport.carbon_footprint_kg_co2e_per_kwh),
            "class": passport.carbon_footprint_class or None,
        },
        "link": digital_link(request, passport) or page_link(request, passport),
    }


def content(request, passport: Passport, symbol: str) -> str:
    """The text the ``symbol`` QR code of ``passport`` carries (404 when the
    passport has no GTIN or no BPAN)."""
    if symbol == "digital-link":
        uri = digital_link(request, passport)
        if uri is None:
            raise NotFound("This passport has no GTIN, so no GS1 Digital Link.")
        return uri
    return json.dumps(
        bpan_payload(request, passport), separators=(",", ":"), ensure_ascii=False
    )


def make(text: str) -> segno.QRCode:
    """The QR code holding exactly ``text``."""
    return segno.make(text, **QR_MAKE)


def draw(text: str, fmt: str) -> bytes:
    """``text`` as a QR code image, ``fmt`` one of ``FORMATS``."""
    out = io.BytesIO()
    make(text).save(out, kind=fmt, **QR_DRAW)
    return out.getvalue()
