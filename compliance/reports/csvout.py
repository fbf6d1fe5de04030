"""A report as CSV, streamed: the header is the columns' labels, then one line
per row in the report's order. UTF-8, comma-separated, RFC 4180 quoting.

Text cells are escaped against CSV injection (a spreadsheet runs a cell that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula): such a cell gets a
leading apostrophe. Numbers are written as numbers, so ``-3.5`` stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from compliance.reports.base import Report

ROWS_PER_CHUNK = 200
# OWASP's list: what makes a spreadsheet read a cell as a formula or split it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def escape_cell(value: str) -> str:
    """A text cell made inert for spreadsheets (``'=SUM(A1)``).

    TODO: switch to ``compliance.csvsafe.escape_cell`` (branch ``returns``)
    once it is merged, so the returns export and reports escape alike.
    """
    if value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return escape_cell(str(value))


class _Line:
    """A file-like that hands back what ``csv.writer`` writes to it."""

    def write(self, text: str) -> str:
        return text


def report_csv(report: Report, params: dict[str, Any]) -> Iterator[bytes]:
    """The whole report as CSV bytes, a chunk of rows at a time."""
    writer = csv.writer(_Line())
    yield writer.writerow([column.label for column in report.columns]).encode()
    keys = [column.key for column in report.columns]
    chunk: list[str] = []
    for row in report.rows(params):
        chunk.append(writer.writerow([_cell(row.get(key)) for key in keys]))
        if len(chunk) >= ROWS_PER_CHUNK:
            yield "".join(chunk).encode()
            chunk = []
    if chunk:
        yield "".join(chunk).encode()
