"""The "kept count equals recount" harness: a hypothesis state machine over a
count the services keep in the transaction of each change (the passports'
``CustodyUnitCount``, the runbooks' ``StageWipCount``: docs/dashboards.md,
"Read models"), checked after every step against a recount from the rows it
counts.

A test subclasses ``CountMachine`` with its rules (the services' moves,
refused ones included, through ``attempt``), ``kept()`` and ``recount()``, and
optionally ``observe(kept)`` to note what the examples reached; then calls
``run_counts(Machine, steps=...)``, which runs it with the suite's settings
and returns what was noted, for the test to check that the examples went
where they must. Each example runs inside a savepoint rolled back at its end,
so examples do not see each other's rows.

The invariant is the harness's, not the test's: a count update removed from
a service makes ``counts_equal_a_recount`` fail on the first step that should
have moved it (``tests/test_custody_counts.py`` and
``tests/test_stage_wip_counts.py`` each prove it by removing one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    run_state_machine_as_test,
)

from bpmos.errors import DomainError


class CountMachine(RuleBasedStateMachine):
    """After every step, ``kept()`` equals ``recount()``."""

    actor: ClassVar[Any] = None  # the user the rules act as (``run_counts``)
    seen: ClassVar[Counter] = Counter()  # what ``observe`` noted, every example

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def attempt(self, call: Callable[[], Any]) -> None:
        """``call()`` in a savepoint; a refusal (``DomainError``) rolls it
        back and changes nothing, which the invariant then checks."""
        try:
            with transaction.atomic():
                call()
        except DomainError:
            pass

    def kept(self) -> Any:
        """The counts as the services kept them."""
        raise NotImplementedError

    def recount(self) -> Any:
        """The same counts, counted from the rows."""
        raise NotImplementedError

    def observe(self, kept: Any) -> None:
        """Note in ``seen`` what this step reached (nothing by default)."""

    @invariant()
    def counts_equal_a_recount(self):
        kept = self.kept()
        assert kept == self.recount()
        self.observe(kept)


def run_counts(
    machine: type[CountMachine],
    *,
    actor,
    steps: int,
    examples: int = 25,
    **overrides,
) -> Counter:
    """Run ``machine`` as ``actor``: ``examples`` sequences of up to ``steps``
    steps, the same sequences every run (derandomized; ``overrides``: other
    hypothesis settings); what its ``observe`` noted."""
    machine.actor = actor
    machine.seen = Counter()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            **overrides,
        ),
    )
    return machine.seen
