"""elog's Celery tasks (Celery's autodiscovery imports this module): one module
per area, each named in bpmos/celery.py's beat schedule."""

from elog import tasks_chain  # noqa: F401
