"""Hypothesis profiles for the property tests (docs/testing.md).

``ci`` (the default: CI and ``make test``) and ``thorough`` (a local
campaign: ``HYPOTHESIS_PROFILE=thorough make test``). Every property test
gives its examples as ``examples(n)``, ``n`` being what it ran on CI until the
profiles existed: ``ci`` runs at most ``CI_MAX_EXAMPLES`` of them (Hypothesis's
own default; the pure-function properties asked for 200 to 500, a fifth to
a half of their module's time), ``thorough`` ``THOROUGH_FACTOR`` times ``n``.
Every property still runs in both; a stateful property over the API may ask
``examples(n, ci=k)``: fewer on ``ci`` only, ``thorough`` keeping ten times
``n``. Neither has a deadline (a loaded machine is no reason to fail), and
both print the failing example's blob (``@reproduce_failure``), so a failure
seen on CI can be replayed.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("ci", "thorough")
CI_MAX_EXAMPLES = 100
THOROUGH_FACTOR = 10

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile(
    "thorough", deadline=None, print_blob=True, max_examples=100 * THOROUGH_FACTOR
)


def profile() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: one of {', '.join(PROFILES)}")
    return name


def load() -> None:
    settings.load_profile(profile())


def examples(n: int, *, ci: int | None = None) -> int:
    """A property test's ``max_examples`` for the profile in use: ``n`` is
    what it ran on CI before the profiles; ``ci`` (at most ``n``) is fewer for
    ``ci`` where a property's examples are expensive (the stateful ones over
    the API: docs/testing.md says which and why). ``thorough`` always runs
    ``THOROUGH_FACTOR`` times ``n``, never fewer than the old count."""
    if profile() == "thorough":
        return n * THOROUGH_FACTOR
    if ci is not None:
        if not 0 < ci <= n:
            raise ValueError(f"examples({n}, ci={ci}): ci is 1 to n")
        n = ci
    return min(n, CI_MAX_EXAMPLES)
