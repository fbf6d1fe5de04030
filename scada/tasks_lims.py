"""Celery tasks of SCADA lims."""
