"""Celery tasks of SCADA alarms."""

from celery import shared_task

from scada import alarms


@shared_task
def alerts_process_task() -> dict[str, int]:
    """The alert rules' periodic pass: delays that elapsed without a reading,
    expired shelves, escalation, floods that ended (see the beat schedule).
    Idempotent: each change re-checks its row under a lock."""
    return alarms.alerts_process(actor=None)
