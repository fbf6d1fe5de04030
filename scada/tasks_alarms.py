"""Celery tasks of SCADA alarms."""
