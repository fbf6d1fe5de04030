"""What the control UI's report screen reads (contract group VIII): the
reports a user may open, and one report's preview: real rows, never samples.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from django.utils import timezone

from bpmos.access import ACTIONS, allows
from bpmos.fields import utc_text
from compliance.reports.base import Report, report_list

PREVIEW_ROWS = 50


def reports_visible(user) -> list[Report]:
    """The registry's reports ``user``'s role may open (``ACTIONS["report.<id>"]``),
    in registry order."""
    role = getattr(user, "role", None)
    return [r for r in report_list() if allows(ACTIONS.get(r.action), role)]


def report_preview(
    report: Report, params: dict[str, Any], *, limit: int = PREVIEW_ROWS
) -> dict[str, Any]:
    """The preview panel's payload: the first ``limit`` rows, the total, the
    summary and the charts, and an empty state when there are no rows."""
    generated_at = timezone.now()
    total = report.count(params)
    rows_iter = report.rows(params)
    try:
        rows = list(islice(rows_iter, limit))
    finally:
        close = getattr(rows_iter, "close", None)
        if close is not None:
            close()  # ends a server-side cursor left open mid-stream
    return {
        "reportId": report.id,
        "title": report.title,
        "generatedAt": utc_text(generated_at),
        "parameters": report.echo(params),
        "columns": [column.as_dict() for column in report.columns],
        "rows": rows,
        "totalRows": total,
        "truncated": total > len(rows),
        "summary": report.summary(params),
        "charts": [chart.as_dict() for chart in report.charts(params)],
        "isEmpty": total == 0,
        "emptyMessage": report.empty_message(params) if total == 0 else None,
        "isDemo": False,
    }
