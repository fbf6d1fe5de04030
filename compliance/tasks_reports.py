"""Celery tasks of compliance's reports area."""
