"""Plant users: Django's user with exactly one plant role."""

from django.contrib.auth.models import AbstractUser
from django.db import models

from bpmos.roles import Role


class User(AbstractUser):
    """A person who signs in to BPM-OS; ``role`` decides what they may do.

    The role is read from this row on every request (simplejwt loads the user
    per request), so changing it or clearing ``is_active`` takes effect at once.
    """

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)

    class Meta:
        ordering = ["username"]

    def apply_role_flags(self) -> None:
        """Admin-site access follows the role: auditors read it, admins run it."""
        self.is_staff = self.role in {Role.AUDITOR, Role.ADMIN}
        self.is_superuser = self.role == Role.ADMIN

    def __str__(self) -> str:
        return f"{self.username} ({self.role})"
