"""Compliance's Celery tasks (Celery's autodiscovery imports this module): one
module per area, each named in bpmos/celery.py's beat schedule."""

from compliance import (  # noqa: F401
    tasks_mailing,
    tasks_reports,
    tasks_score,
)
