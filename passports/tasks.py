"""Celery tasks of the passports app: ids in, a service call out."""

from celery import shared_task

from bpmos.errors import Conflict
from passports import checkpoints


@shared_task
def ledger_checkpoint_task() -> int | None:
    """Write the next ledger checkpoint (beat ``ledger-checkpoint``, every
    ``BPMOS_LEDGER_CHECKPOINT_SECONDS``); returns its seq, or None when no
    chain grew or a grown chain does not verify (``ledger_checkpoint_refused``
    in the log: nothing is written over a broken chain)."""
    try:
        checkpoint = checkpoints.checkpoint_build()
    except Conflict:
        return None
    return checkpoint.seq if checkpoint else None
