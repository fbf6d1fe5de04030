"""The plant's roles (docs/design.md §5).

Who may call what is declared in bpmos/access.py.
"""

from django.db import models


class Role(models.TextChoices):
    """A user's one role; the slug is what the API and tokens carry."""

    OPERATOR = "operator", "Operator"
    PLANNER = "planner", "Planner"
    SUPERVISOR = "supervisor", "Supervisor"
    PLANT_HEAD = "plant-head", "Plant Head"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"
