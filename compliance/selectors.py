"""Reads of compliance for other read models (the role dashboards)."""

from __future__ import annotations

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
    return ComplianceReturn.objects.filter(status=ReturnStatus.DRAFT).count()
