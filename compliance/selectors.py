"""Reads of compliance for other read models (the role dashboards)."""

from __future__ import annotations

from django.db.models import Count

from bpmos.compiled import rows_get
from bpmos.totals import Totals
from compliance.models import ComplianceReturn, ReturnStatus


def return_draft_list(*, limit: int = 50) -> list[dict]:
    """Returns built and not yet approved (a supervisor approves them), oldest
    first: ``id``, ``period_start``, ``period_end``, ``built_at`` of each. One
    query, compiled once (``bpmos.compiled``)."""
    return rows_get(*return_draft_statement(limit=limit))


def return_draft_statement(*, limit: int = 50) -> tuple:
    """``return_draft_list`` as (shape, make) for ``bpmos.compiled``."""
    return (
        ("return_draft_list", limit),
        lambda: ComplianceReturn.objects.filter(status=ReturnStatus.DRAFT)
        .order_by("built_at", "id")
        .values("id", "period_start", "period_end", "built_at")[:limit],
    )


def return_draft_count() -> int:
    """How many returns wait for approval. One query."""
    return return_draft_totals().get()


def return_draft_totals() -> Totals:
    """``return_draft_count`` as ``Totals``, not run."""
    return Totals(
        ComplianceReturn.objects.filter(status=ReturnStatus.DRAFT),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )
