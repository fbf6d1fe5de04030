"""Celery tasks of SCADA maintenance."""
