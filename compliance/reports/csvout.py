"""A report as CSV, streamed: the header is the columns' labels, then one line
per row in the report's order. UTF-8, comma-separated, RFC 4180 quoting.

Text cells are escaped against CSV injection (a spreadsheet runs a cell that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula; a leading tab, CR or
NUL hides one from some importers): such a cell gets a leading apostrophe. A
plain negative number (``-3.5``) stays a number. Lines end in CRLF; no
byte-order mark.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from compliance.reports.base import Report

ROWS_PER_CHUNK = 200
# OWASP's formula starts, plus tab and CR (some importers strip them first)
# and NUL (OWASP ASVS 1.2.10), as compliance.csvsafe (branch ``returns``).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
_PLAIN_NEGATIVE = re.compile(r"-[0-9]+(\.[0-9]+)?")
# A lone UTF-16 surrogate cannot be encoded: shown as U+FFFD (bpmos/renderers.py).
_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_cell(value: Any) -> str:
    """A cell's text made inert for spreadsheets (``'=SUM(A1)``); a plain
    negative number (``-5``, ``-12.25``) stays a number.

    TODO: use ``compliance.csvsafe.escape_cell`` (branch ``returns``, the same
    signature and rule) once it is merged, so every CSV escapes alike.
    """
    text = _text(value)
    if not text.startswith(_FORMULA_STARTS) or _PLAIN_NEGATIVE.fullmatch(text):
        return text
    return "'" + text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Line:
    """A file-like that hands back what ``csv.writer`` writes to it."""

    def write(self, text: str) -> str:
        return text


def report_csv(report: Report, params: dict[str, Any]) -> Iterator[bytes]:
    """The whole report as CSV bytes, a chunk of rows at a time."""
    writer = csv.writer(_Line(), dialect="excel", lineterminator="\r\n")
    yield _encoded(writer.writerow([column.label for column in report.columns]))
    keys = [column.key for column in report.columns]
    chunk: list[str] = []
    for row in report.rows(params):
        chunk.append(writer.writerow([escape_cell(row.get(key)) for key in keys]))
        if len(chunk) >= ROWS_PER_CHUNK:
            yield _encoded("".join(chunk))
            chunk = []
    if chunk:
        yield _encoded("".join(chunk))


def _encoded(text: str) -> bytes:
    return _SURROGATE.sub("\ufffd", text).encode("utf-8")
