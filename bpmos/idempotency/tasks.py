"""Celery task of the idempotency keys."""

from celery import shared_task

from bpmos.idempotency import services


@shared_task
def idempotency_keys_prune_task() -> int:
    """Delete the idempotency keys past their 24 hours (BPMOS_IDEMPOTENCY_KEY_HOURS)."""
    return services.keys_prune()
