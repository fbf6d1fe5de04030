"""Celery tasks of compliance's reports area: render a report job, prune old
jobs. Each is one line around ``compliance.reports.jobs``."""

from celery import shared_task

from bpmos.errors import NotFound
from compliance.reports import jobs

# A report past this is stopped (SoftTimeLimitExceeded inside the renderer,
# which marks the job failed); the hard limit kills a worker that ignores it.
SOFT_TIME_LIMIT_S = 30 * 60
TIME_LIMIT_S = SOFT_TIME_LIMIT_S + 60


@shared_task(acks_late=True, soft_time_limit=SOFT_TIME_LIMIT_S, time_limit=TIME_LIMIT_S)
def report_job_run_task(job_id: str) -> str:
    """Render one queued report job; its status after the run."""
    try:
        return jobs.job_run(job_id=job_id).status
    except NotFound:
        return "missing"


@shared_task
def report_jobs_prune_task() -> int:
    """Delete report jobs and files past BPMOS_REPORT_JOB_KEEP_HOURS (beat)."""
    return jobs.jobs_prune()
