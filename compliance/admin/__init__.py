"""Compliance's admin: one module per area (Django imports this package)."""

from compliance.admin import (  # noqa: F401
    categories,
    mailing,
    report_jobs,
    returns,
    score,
)
