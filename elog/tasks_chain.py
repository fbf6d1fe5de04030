"""Celery task of the audit chain's stored verification (elog.chain_status)."""

from celery import shared_task

from elog import chain_status


@shared_task
def audit_chain_status_refresh_task() -> bool:
    """Walk the audit chain and store the outcome (beat: every 15 minutes);
    returns whether the chain is intact."""
    return chain_status.audit_chain_status_refresh()["ok"]
