"""A report as CSV, streamed: the header is the columns' labels, then one line
per row in the report's order.

Written by ``bpmos.csvsafe``, the one CSV writer of the compliance app:
UTF-8 without a byte-order mark, RFC 4180 quoting, CRLF, and every cell
escaped against CSV injection (a cell a spreadsheet would run as a formula,
``=…``, ``+…``, ``-…``, ``@…``, gets a leading apostrophe; a plain negative
number such as ``-3.5`` stays a number).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bpmos import csvsafe
from compliance.reports.base import Report

escape_cell = csvsafe.escape_cell  # the rule every compliance CSV follows


def report_csv(report: Report, params: dict[str, Any]) -> Iterator[bytes]:
    """The whole report as CSV bytes, the header first, then a chunk per row."""
    keys = [column.key for column in report.columns]
    rows = ([row.get(key) for key in keys] for row in report.rows(params))
    return csvsafe.csv_lines([column.label for column in report.columns], rows)
