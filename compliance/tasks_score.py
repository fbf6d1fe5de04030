"""Celery tasks of compliance's score area."""
