"""Celery tasks of compliance's score area."""

from celery import shared_task

from compliance import score


@shared_task
def compliance_score_refresh_task() -> int:
    """Compute the Aadhaar Ready % into a new snapshot (beat: every 10
    minutes); returns the snapshot's id. Re-running only adds a newer row."""
    return score.score_compute().pk
