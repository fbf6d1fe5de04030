"""The one check behind every status transition table."""

from typing import ClassVar

from bpmos.errors import IllegalTransition


class StatusTransitions:
    """Mixin for a model with a ``status`` field and a transition table.

    A model sets ``TRANSITIONS`` (status -> the statuses it may become) and
    ``transition_subject`` (how a refusal names it: "Work order 12"); services
    call ``require_transition`` before every status change.
    """

    TRANSITIONS: ClassVar[dict[str, set[str]]]

    @property
    def transition_subject(self) -> str:
        return str(self)

    def require_transition(self, *, to: str) -> None:
        """Raise ``IllegalTransition`` (409) unless the table allows the move."""
        if to not in self.TRANSITIONS[self.status]:
            labels = dict(self._meta.get_field("status").choices)
            raise IllegalTransition(
                f"{self.transition_subject} is {labels[self.status]}; "
                f"it cannot become {labels.get(to, to)}.",
                details={"from": self.status, "to": to},
            )
