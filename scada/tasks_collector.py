"""Celery tasks of SCADA collector."""
