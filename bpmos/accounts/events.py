"""Events about users, for admins' live views (topic ``users``)."""

from typing import TypedDict

from bpmos.events import Event, declare


class UserPayload(TypedDict):
    id: int
    username: str
    role: str
    isActive: bool


USER_REGISTERED = declare("user.registered", UserPayload)
USER_ROLE_CHANGED = declare("user.role_changed", UserPayload)
USER_DEACTIVATED = declare("user.deactivated", UserPayload)
USER_REACTIVATED = declare("user.reactivated", UserPayload)


class UserChanged:
    """Builds the event for a change to a user."""

    @staticmethod
    def of(user, *, change: str) -> Event:
        payload: UserPayload = {
            "id": user.pk,
            "username": user.username,
            "role": user.role,
            "isActive": user.is_active,
        }
        return Event(name=f"user.{change}", topics=("users",), data=payload)
