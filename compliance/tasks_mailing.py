"""Celery tasks of compliance's mailing area.

Beat runs ``scheduled_return_send_task`` for each ``ScheduledReturn`` from the
schedule's django-celery-beat ``PeriodicTask`` (``compliance.mailing
.schedule_sync``), with ``{"schedule_id": id}``. The admin's *Send now* queues
the same task. An attempt the mail server may get over is retried on a backoff
(1, 2, 4, 8, 16 minutes), sending the return the first attempt built; each
attempt is an ``EmailDelivery`` row and an audit record.
"""

from celery import shared_task

from bpmos import context
from compliance import mailing
from compliance.models import DeliveryStatus

MAX_RETRIES = mailing.MAX_ATTEMPTS - 1


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def scheduled_return_send_task(
    self, schedule_id: int, return_id: int | None = None
) -> str:
    """One attempt to mail a scheduled return; a retry while the mail fails."""
    token = context.bind(
        context.RequestContext(request_id=self.request.id or "", source="task")
    )
    try:
        delivery = mailing.scheduled_send(
            schedule_id=schedule_id,
            attempt=self.request.retries + 1,
            max_attempts=self.max_retries + 1,
            return_id=return_id,
        )
    finally:
        context.reset(token)
    if delivery is None:
        return "missing"
    if delivery.status == DeliveryStatus.RETRYING:
        raise self.retry(
            kwargs={"schedule_id": schedule_id, "return_id": delivery.ret_id},
            countdown=mailing.retry_delay(self.request.retries),
        )
    return delivery.status
