"""Reads of compliance for other read models (the role dashboards)."""

from __future__ import annotations

from django.db.models import Count

from bpmos.totals import Totals
from compliance.models import ComplianceReturn, ReturnStatus


def return_draft_list(*, limit: int = 50) -> list[ComplianceReturn]:
    """Returns built and not yet approved (a supervisor approves them), oldest
    first. One query."""
    return list(
        ComplianceReturn.objects.filter(status=ReturnStatus.DRAFT)
        .only("id", "period_start", "period_end", "financial_year", "built_at")
        .order_by("built_at", "id")[:limit]
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
