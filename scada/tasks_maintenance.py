"""Celery tasks of SCADA maintenance: deliver work orders to the CMMS.

``work_order_deliver_task`` makes one attempt and, after a failure that may
pass, retries itself on the service's exponential backoff (``self.retry`` with
the countdown the service set as ``next_attempt_at``). The beat task
``work_orders_redeliver_task`` re-queues every work order whose next attempt
is due, so nothing depends on a retry message surviving: a lost message, a
restarted worker or a broker outage only delays a work order.
"""

from celery import shared_task

from bpmos.errors import NotFound
from scada import maintenance

# Enough for the service's fast backoff (30 s … 64 min over 8 attempts); after
# that the beat tries once per cap interval.
MAX_RETRIES = maintenance.MAX_ATTEMPTS


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def work_order_deliver_task(self, work_order_id: int) -> str:
    """One delivery attempt; a retry on the backoff while the CMMS fails."""
    try:
        attempt = maintenance.work_order_attempt(work_order_id=work_order_id)
    except NotFound:
        return "missing"
    if (
        attempt.outcome == maintenance.DeliveryOutcome.RETRYING
        and attempt.retry_in_s is not None
        and self.request.retries < self.max_retries
    ):
        raise self.retry(countdown=attempt.retry_in_s)
    return attempt.outcome.value


@shared_task
def work_orders_redeliver_task() -> int:
    """Queue an attempt for each work order that is due (see the beat schedule)."""
    due = maintenance.work_orders_due()
    for work_order_id in due:
        work_order_deliver_task.apply_async(args=[work_order_id])
    return len(due)


@shared_task
def work_orders_status_refresh_task() -> dict[str, int]:
    """Close the work orders the CMMS reports closed (see the beat schedule)."""
    return maintenance.work_orders_status_refresh()
