"""Reads of the audit log."""

from django.db.models import QuerySet

from elog.models import AuditRecord


def audit_record_list() -> QuerySet[AuditRecord]:
    """Every audit record, newest first."""
    return AuditRecord.objects.order_by("-seq")
