"""CSV that a spreadsheet cannot be made to run: the one writer of every CSV
the plant hands out (compliance returns and reports, the logs, the back-office
exports).

CSV injection (OWASP, "CSV Injection"): a spreadsheet opening a CSV reads a
cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and a leading
tab or carriage return is stripped by some importers to reveal one. A serial,
a custodian's name or a note typed by someone outside the plant can therefore
carry ``=HYPERLINK(...)`` or a DDE payload into the regulator's return. Every
text cell goes through ``escape_cell``: a cell beginning with one of those
characters (or NUL, which OWASP ASVS 1.2.10 adds) is prefixed with a single
quote (``'``), which every spreadsheet shows as text and never evaluates.

Negative numbers: a cell that is exactly a decimal number (``-5``,
``-12.250``) is left alone. A spreadsheet reads it as the number it is, and
nothing in it can be evaluated; escaping it would turn every negative figure
into text. Anything more (``-5+1``, ``-1e3``, ``-2+3+cmd|' /C calc'!A0``) is
escaped. ``+5`` is escaped: the plant writes no figure with a plus sign.

Quoting is RFC 4180's through Python's ``csv`` module (a cell with a comma,
a quote, CR or LF is quoted, quotes doubled), lines end in CRLF, the text is
UTF-8 *without* a byte-order mark: the regulator's portal and Python's ``csv``
reader (``encoding="utf-8"``) would read a BOM as part of the first header,
and the checksum we publish must be of exactly what a machine reads. (Excel
opens such a file correctly through Data → From Text/CSV; a report that wants
a double-click to work in Excel may pass ``bom=True``.)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

# The characters a spreadsheet treats as the start of a formula (OWASP), plus
# tab and carriage return, which some importers strip before looking, and NUL
# (OWASP ASVS 1.2.10 lists it too).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
ESCAPE_PREFIX = "'"
_PLAIN_NEGATIVE = re.compile(r"-[0-9]+(\.[0-9]+)?")
BOM = "\ufeff"
# A lone UTF-16 surrogate is not text and cannot be encoded: shown as U+FFFD,
# as the API's JSON renderer does (bpmos/renderers.py).
_SURROGATE = re.compile("[\ud800-\udfff]")


def cell_text(value: Any) -> str:
    """A value as the text of one cell: None is empty, booleans ``true`` and
    ``false``, times ISO 8601 (UTC with ``Z`` when aware), decimals as stored."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            text = value.astimezone(UTC).isoformat()
            return text.removesuffix("+00:00") + "Z"
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def escape_cell(value: Any) -> str:
    """The cell's text, prefixed with ``'`` when a spreadsheet would read it
    as a formula (see the module's docstring; ``-5`` stays a number)."""
    text = cell_text(value)
    if not text.startswith(FORMULA_STARTS):
        return text
    if _PLAIN_NEGATIVE.fullmatch(text):
        return text
    return ESCAPE_PREFIX + text


def _writer_for(out: io.StringIO):
    return csv.writer(out, dialect="excel", lineterminator="\r\n")


def _encoded(text: str) -> bytes:
    return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def csv_lines(
    header: list[str], rows: Iterable[list], *, bom: bool = False
) -> Iterator[bytes]:
    """The CSV as UTF-8 byte chunks, one per row (header first), for a
    ``StreamingHttpResponse`` or a file written as it goes: the same bytes as
    ``csv_bytes`` without holding them all."""
    out = io.StringIO(newline="")
    writer = _writer_for(out)
    writer.writerow([escape_cell(name) for name in header])
    first = out.getvalue()
    yield _encoded((BOM if bom else "") + first)
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow([escape_cell(value) for value in row])
        yield _encoded(out.getvalue())


def csv_bytes(header: list[str], rows: Iterable[list], *, bom: bool = False) -> bytes:
    """The CSV as UTF-8 bytes: RFC 4180 quoting, CRLF, cells escaped against
    CSV injection, no byte-order mark unless ``bom``."""
    return b"".join(csv_lines(header, rows, bom=bom))
