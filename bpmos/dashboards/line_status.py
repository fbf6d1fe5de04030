"""A line with its runbook's computed status (control-UI payload C).

The line's own status is ``lines.selectors``'; its runbook's status, current
stage and title are the control tower's (``bpmos.dashboards.controltower``),
which reads runbooks, exceptions and passports. Composing the two lives here so
that lines does not import the control tower (docs/architecture.md).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from bpmos.dashboards import controltower
from lines import selectors as line_selectors
from lines.selectors import LineView, RunbookRef


def line_with_runbook_get(*, slug: str, now: datetime | None = None) -> LineView:
    """One line's status with its runbook's computed status (404 if no line)."""
    now = now or timezone.now()
    view = line_selectors.line_status_get(slug=slug, now=now)
    line = view.line
    if line.runbook_id:
        detail = controltower.runbook_detail_get(slug=line.runbook.slug, now=now)
        view.runbook = RunbookRef(
            id=detail.summary.id,
            title=detail.summary.title,
            status=str(detail.summary.status),
            current_stage=detail.summary.current_stage,
        )
    return view
