"""GS1 identifiers of a battery: its GTIN, and the GS1 Digital Link URI that a
QR code on it carries.

* **GTIN** (AI 01): 8, 12, 13 or 14 digits, the last a mod-10 check digit
  (checked by python-stdnum's ``ean``). Stored as GTIN-14: shorter GTINs are
  padded with leading zeros, as GS1 Digital Link writes them.
* **Serial** (AI 21): up to 20 characters of GS1 AI encodable character set 82
  (``passports.models.Passport.serial``: only a serial that fits can go with a
  GTIN).
* **Digital Link URI** (GS1 Digital Link standard 1.2, section 4): ``https://
  {domain}/01/{gtin}/21/{serial}``, the serial percent-encoded. A resolver
  also accepts the other key qualifiers GS1 allows for a GTIN, in their
  order: ``/01/{gtin}/22/{cpv}/10/{lot}/21/{serial}`` (``22`` consumer
  product variant, ``10`` batch or lot); ``parse_path`` reads them.

Everything generic (check digits) comes from python-stdnum; what is ours is
which fields a battery's link holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from stdnum import ean
from stdnum.exceptions import ValidationError as StdnumError

GTIN_LENGTHS = (8, 12, 13, 14)


def _schema_pattern() -> str:
    """What ``gtin_normalize`` takes before the check digit, as the schema's
    pattern: 8, 12, 13 or 14 ASCII digits, white space (Python's) anywhere.
    The check digit stays ``gtin_normalize``'s (a 400)."""
    from passports.attributes import SPACE_CLASS

    gap = SPACE_CLASS + "*"
    digit = f"[0-9]{gap}"
    return f"^{gap}(?:(?:{digit}){{8}}|(?:{digit}){{12,14}})$"


SCHEMA_PATTERN = _schema_pattern()
SERIAL_MAX = 20
LOT_MAX = 20
CPV_MAX = 20
# GS1 AI encodable character set 82 (GS1 General Specifications 7.11, fig. 7.11-1).
_CSET82 = re.compile(r"""^[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$""")


class GS1Error(ValueError):
    """Why a value is not a valid GS1 identifier (a message for a person)."""


def gtin_normalize(value: str) -> str:
    """The GTIN-14 of ``value`` (8, 12, 13 or 14 digits with a valid check
    digit), or ``GS1Error`` saying what is wrong."""
    digits = re.sub(r"\s", "", value or "")
    if not digits.isdigit() or not digits.isascii():
        raise GS1Error("A GTIN holds digits only.")
    if len(digits) not in GTIN_LENGTHS:
        raise GS1Error(f"A GTIN has 8, 12, 13 or 14 digits; this has {len(digits)}.")
    try:
        ean.validate(digits)
    except StdnumError as exc:
        raise GS1Error(
            "The GTIN's check digit (its last digit) does not match: mistyped "
            "or not a GTIN."
        ) from exc
    return digits.rjust(14, "0")


def _ai_value(value: str, *, limit: int, name: str) -> str:
    if not value or len(value) > limit or not _CSET82.match(value):
        raise GS1Error(
            f"A GS1 {name} has 1 to {limit} characters: letters, digits and "
            """!"%&'()*+,-./:;<=>?_ only."""
        )
    return value


def serial_check(serial: str) -> str:
    """``serial`` if it can be a GS1 serial number (AI 21), else ``GS1Error``."""
    return _ai_value(serial, limit=SERIAL_MAX, name="serial (AI 21)")


def digital_link_path(*, gtin: str, serial: str) -> str:
    """``/01/{gtin}/21/{serial}``: the path of a battery's Digital Link URI."""
    return f"/01/{gtin}/21/{quote(serial, safe='')}"


def digital_link_uri(*, domain: str, gtin: str, serial: str) -> str:
    """The Digital Link URI on ``domain`` (scheme and host, no trailing slash)."""
    return domain.rstrip("/") + digital_link_path(gtin=gtin, serial=serial)


@dataclass(frozen=True)
class DigitalLink:
    """The key and key qualifiers a Digital Link path names."""

    gtin: str
    serial: str
    lot: str | None = None
    cpv: str | None = None


# /01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]: GS1's qualifier path for a
# GTIN, in the order the standard fixes.
PATH_PATTERN = (
    r"01/(?P<gtin>[^/]{1,40})"
    r"(?:/22/(?P<cpv>[^/]{1,60}))?"
    r"(?:/10/(?P<lot>[^/]{1,60}))?"
    # The serial is the last qualifier and may itself hold "/" (character set
    # 82 allows it; the server has decoded its %2F before routing).
    r"(?:/21/(?P<serial>.{1,60}?))?"
)


def parse_path(
    *, gtin: str, serial: str | None, lot: str | None = None, cpv: str | None = None
) -> DigitalLink:
    """The parts of a Digital Link path (as ``PATH_PATTERN`` captured them from
    the decoded path), checked; ``GS1Error`` names the first wrong one.
    A battery is named by GTIN and serial: a path without a serial names a
    product, not a battery."""
    normalized = gtin_normalize(gtin)
    if serial is None:
        raise GS1Error(
            "This link names a product (GTIN), not one battery: add /21/{serial}."
        )
    return DigitalLink(
        gtin=normalized,
        serial=serial_check(serial),
        lot=None if lot is None else _ai_value(lot, limit=LOT_MAX, name="lot (AI 10)"),
        cpv=None if cpv is None else _ai_value(cpv, limit=CPV_MAX, name="CPV (AI 22)"),
    )
