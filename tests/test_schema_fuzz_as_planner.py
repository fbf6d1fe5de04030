"""The API fuzzed from its own schema as the demo ``planner``: the checks are
tests/test_schema_fuzz.py's; a module per identity, so both xdist workers share them."""

import pytest

from tests.test_schema_fuzz import (  # noqa: F401 (the module's fixtures)
    api_schema,
    fuzz_as,
    in_process_app,
    stateful_as,
)

pytestmark = pytest.mark.django_db

IDENTITY = "planner"

test_api_conforms_to_its_schema_as_planner = fuzz_as(IDENTITY)
test_api_chains_conform_to_its_schema_as_planner = stateful_as(IDENTITY)
