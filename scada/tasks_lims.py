"""Celery tasks of SCADA lims: fetch quality results from the REST LIMSs."""

from celery import shared_task

from scada import quality


@shared_task
def lims_fetch_due_task() -> int:
    """Fetch every enabled LIMS connector whose interval has passed (the beat
    schedule runs this every minute); re-running it applies nothing twice."""
    return quality.lims_fetch_due()
