"""Celery task of the audit chain's stored verification (elog.chain_status)."""

from celery import shared_task

from elog import anchors, audit, chain_status


@shared_task
def audit_chain_status_refresh_task() -> bool:
    """Walk the audit chain and store the outcome (beat: every 15 minutes);
    returns whether the chain is intact."""
    return chain_status.audit_chain_status_refresh()["ok"]


@shared_task
def audit_anchor_write_task() -> int | None:
    """Anchor the audit chain's head outside the database (beat: every
    ``BPMOS_AUDIT_ANCHOR_SECONDS``); returns the seq anchored, or None."""
    anchor = anchors.audit_anchor_write()
    return anchor.seq if anchor else None


@shared_task
def audit_pending_seal_task() -> int:
    """Chain the staged audit records a writer's own seal left (a crash after
    its commit, a seal that timed out waiting for the lock): beat, every
    ``BPMOS_AUDIT_SEAL_SECONDS``. Returns how many were chained."""
    return audit.seal_pending()
