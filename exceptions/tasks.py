"""Celery tasks of exceptions."""

from celery import shared_task

from exceptions import services


@shared_task
def exceptions_escalate_task() -> int:
    """Escalate exceptions not acknowledged in time (see the beat schedule)."""
    return services.exceptions_escalate_overdue()
