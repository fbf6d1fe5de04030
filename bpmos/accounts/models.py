"""Plant users: Django's user with exactly one plant role."""

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models, transaction

from bpmos.roles import Role


class UserManager(DjangoUserManager):
    """Django's manager; a superuser (``createsuperuser``) is an admin by role.

    Without this the role defaults to operator: the first admin made in
    production would have every Django flag but be refused the admin endpoints.
    """

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", Role.ADMIN)
        if extra_fields["role"] != Role.ADMIN:
            raise ValueError("A superuser must have the admin role.")
        # services imports this module; a write is audited like any other.
        from bpmos.accounts.services import user_registration_record

        with transaction.atomic():
            user = super().create_superuser(username, email, password, **extra_fields)
            user_registration_record(user=user, actor=None)
        return user


class User(AbstractUser):
    """A person who signs in to BPM-OS; ``role`` decides what they may do.

    The role is read from this row on every request (simplejwt loads the user
    per request), so changing it or clearing ``is_active`` takes effect at once;
    a deactivation also ends, for good, every token issued before it.
    """

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATOR)
    # Raised by each deactivation; a token issued in an earlier generation is
    # refused even after a reactivation (bpmos/accounts/authentication.py).
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    class Meta:
        ordering = ["username"]

    def apply_role_flags(self) -> None:
        """Admin-site access follows the role: auditors read it, admins run it."""
        self.is_staff = self.role in {Role.AUDITOR, Role.ADMIN}
        self.is_superuser = self.role == Role.ADMIN

    def __str__(self) -> str:
        return f"{self.username} ({self.role})"
