"""The Battery Pack Aadhaar Number (BPAN): format, check character, issuing.

Source: Ministry of Road Transport and Highways, *Draft Guidelines for
Implementation of Battery Pack Aadhaar System* (2 January 2026), as reported in
its summaries (Mint, 8 Jan 2026; Energetica India, 8 Jan 2026; Power Peak
Digest, 12 Jan 2026): every battery pack carries a 21-character alphanumeric
BPAN, in sections: Battery Manufacturer Identifier (BMI: country and
manufacturer), Battery Descriptor Section (BDS: chemistry, voltage, capacity)
and Battery Identifier (BI: serial number tied to the date and place of
manufacture). The draft's character-by-character table was not available to
us; the positions below are our reading of those sections and the check
character is ISO 7064 MOD 37,36 (python-stdnum), an alphanumeric check the
draft's "check character" admits. docs/passports.md says the same; if the
final guideline fixes other positions or another check, this module is the one
place to change.

    position  1-2   country (ISO 3166-1 alpha-2, "IN")          BMI
              3-5   manufacturer code (3 alphanumerics)         BMI
              6     chemistry (L LFP, N NMC, A NCA, M LMO,      BDS
                    T LTO, S sodium-ion)
              7-9   nominal voltage, volts (3 digits)           BDS
              10-11 energy, kWh (2 digits, 99 = 99 or more)     BDS
              12-13 year of manufacture (2 digits)              BI
              14    month (1-9, A-C)                            BI
              15    plant code (1 alphanumeric)                 BI
              16-20 serial (5 alphanumerics)                    BI
              21    check character, ISO 7064 MOD 37,36 over 1-20
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date

from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_37_36

LENGTH = 21
CHEMISTRY_CODES = {
    "L": "LFP",
    "N": "NMC",
    "A": "NCA",
    "M": "LMO",
    "T": "LTO",
    "S": "NaION",
}
CODE_OF_CHEMISTRY = {name: code for code, name in CHEMISTRY_CODES.items()}
MONTHS = "123456789ABC"
_ALNUM = "[0-9A-Z]"
_PATTERN = re.compile(
    r"^(?P<country>[A-Z]{2})(?P<manufacturer>[0-9A-Z]{3})"
    r"(?P<chemistry>[LNAMTS])(?P<voltage>[0-9]{3})(?P<energy>[0-9]{2})"
    r"(?P<year>[0-9]{2})(?P<month>[1-9ABC])(?P<plant>[0-9A-Z])"
    r"(?P<serial>[0-9A-Z]{5})(?P<check>[0-9A-Z])$"
)


class BPANError(ValueError):
    """Why a string is not a valid BPAN (a message for a person)."""


@dataclass(frozen=True)
class BPAN:
    value: str
    country: str
    manufacturer: str
    chemistry: str
    nominal_voltage_v: int
    energy_kwh: int
    year: int
    month: int
    plant: str
    serial: str

    def as_dict(self) -> dict:
        return {
            "bpan": self.value,
            "country": self.country,
            "manufacturerCode": self.manufacturer,
            "chemistry": self.chemistry,
            "nominalVoltageV": self.nominal_voltage_v,
            "energyKwh": self.energy_kwh,
            "manufactured": f"{self.year:04d}-{self.month:02d}",
            "plantCode": self.plant,
            "serial": self.serial,
        }


# What ``compact`` drops: Python's ``\s`` (every ``str.isspace()`` character)
# and the hyphen, spelt out so that the schema's pattern (ECMA 262, whose
# ``\s`` is another set) names the same characters.
SEPARATORS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000-"
)
_SEPARATORS = re.compile("[" + re.escape(SEPARATORS) + "]")
# Upper case for a-z only: str.upper() made BPAN letters of "\u00df" ("SS"),
# the dotless i and the "fi" ligature, which no schema pattern can follow.
_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def compact(value: str) -> str:
    """Upper case, without spaces or hyphens (how people write it down)."""
    return _SEPARATORS.sub("", value or "").translate(_UPPER)


def _schema_pattern() -> str:
    """The format ``parse`` checks before the check character, as the schema's
    pattern: 21 characters in the sections below (either case), separators
    anywhere. The check character itself stays ``parse``'s (a 400)."""
    gap = "[" + "".join(f"\\u{ord(c):04x}" for c in SEPARATORS[:-1]) + "-]*"

    def run(cls: str, count: int) -> str:
        return f"(?:{cls}{gap}){{{count}}}"

    return (
        f"^{gap}"
        + run("[A-Za-z]", 2)  # country
        + run("[0-9A-Za-z]", 3)  # manufacturer
        + run("[LNAMTSlnamts]", 1)  # chemistry
        + run("[0-9]", 7)  # voltage, energy, year
        + run("[1-9ABCabc]", 1)  # month
        + run("[0-9A-Za-z]", 7)  # plant, serial, check character
        + "$"
    )


SCHEMA_PATTERN = _schema_pattern()


def parse(value: str) -> BPAN:
    """The parts of a valid BPAN, or ``BPANError`` saying what is wrong."""
    number = compact(value)
    if len(number) != LENGTH:
        raise BPANError(f"A BPAN has {LENGTH} characters; this has {len(number)}.")
    if not re.fullmatch(f"{_ALNUM}+", number):
        raise BPANError("A BPAN holds only the letters A-Z and digits 0-9.")
    match = _PATTERN.match(number)
    if match is None:
        raise BPANError(_first_bad_section(number))
    try:
        mod_37_36.validate(number)
    except StdnumError as exc:
        raise BPANError(
            "The check character (position 21) does not match: mistyped or not a BPAN."
        ) from exc
    parts = match.groupdict()
    return BPAN(
        value=number,
        country=parts["country"],
        manufacturer=parts["manufacturer"],
        chemistry=CHEMISTRY_CODES[parts["chemistry"]],
        nominal_voltage_v=int(parts["voltage"]),
        energy_kwh=int(parts["energy"]),
        year=2000 + int(parts["year"]),
        month=MONTHS.index(parts["month"]) + 1,
        plant=parts["plant"],
        serial=parts["serial"],
    )


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except BPANError:
        return False
    return True


def _first_bad_section(number: str) -> str:
    checks = [
        (0, 2, r"[A-Z]{2}", "positions 1-2 must be a country code (letters)"),
        (5, 6, "[LNAMTS]", "position 6 must be a chemistry code (L, N, A, M, T, S)"),
        (6, 9, "[0-9]{3}", "positions 7-9 must be the nominal voltage (digits)"),
        (9, 11, "[0-9]{2}", "positions 10-11 must be the energy in kWh (digits)"),
        (11, 13, "[0-9]{2}", "positions 12-13 must be the year (digits)"),
        (13, 14, "[1-9ABC]", "position 14 must be the month (1-9, A-C)"),
    ]
    for start, end, pattern, message in checks:
        if not re.fullmatch(pattern, number[start:end]):
            return f"Not a BPAN: {message}."
    return "Not a BPAN."


def issue(
    *,
    manufacturer: str,
    chemistry: str,
    nominal_voltage_v: float,
    energy_kwh: float,
    made: date,
    plant: str,
    serial: int | str,
    country: str = "IN",
) -> str:
    """A BPAN for a pack, with its check character.

    ``serial`` is a number (written base 36 in five characters) or five
    alphanumerics; ``chemistry`` a name such as "LFP".
    """
    if isinstance(serial, int):
        digits = ""
        n = serial
        for _ in range(5):
            n, r = divmod(n, 36)
            digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[r] + digits
        if n:
            raise BPANError("Serial too large for five base-36 characters.")
        serial = digits
    body = (
        f"{country.upper():.2}{manufacturer.upper():.3}"
        f"{CODE_OF_CHEMISTRY[chemistry]}{round(nominal_voltage_v):03d}"
        f"{min(round(energy_kwh), 99):02d}{made.year % 100:02d}"
        f"{MONTHS[made.month - 1]}{plant.upper():.1}{serial.upper()}"
    )
    if not re.fullmatch(f"{_ALNUM}{{{LENGTH - 1}}}", body):
        raise BPANError(
            "Manufacturer code (3), plant code (1) and serial (5) must be "
            "letters A-Z or digits."
        )
    number = body + mod_37_36.calc_check_digit(body)
    parse(number)  # refuses a manufacturer/plant code of the wrong shape
    return number
