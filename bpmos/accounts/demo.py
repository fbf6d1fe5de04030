"""Demo users: one per role, password BPMOS_DEMO_PASSWORD."""

from django.conf import settings

from bpmos import audit
from bpmos.accounts.models import User
from bpmos.roles import Role

ORDER = 0  # users first: every other area's demo data needs them


def seed(log) -> None:
    """Create the missing demo users; existing ones are left as they are."""
    created = []
    if User.objects.filter(username__in=[r.value for r in Role]).count() < len(Role):
        log("users: creating the demo users (password hashing: a few seconds) ...")
    for role in Role:
        user, is_new = User.objects.get_or_create(
            username=role.value, defaults={"role": role.value, "first_name": role.label}
        )
        if is_new:
            user.set_password(settings.BPMOS_DEMO_PASSWORD)
            user.apply_role_flags()
            user.save()
            audit.record(
                actor=None,
                action="user.registered",
                target=user,
                after={"username": user.username, "role": user.role},
            )
            created.append(user.username)
    log(f"users: created {', '.join(created)}" if created else "users: already present")
