"""Celery tasks of compliance's mailing area."""
