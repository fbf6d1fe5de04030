"""Schemathesis hooks of the long fuzz campaign (docs/testing.md, "The long
campaign"): ``SCHEMATHESIS_HOOKS=bench.fuzz_hooks``.

``no_server_error`` is ``not_a_server_error`` less the two deployment 503s that
are right against a gunicorn with no OPC UA simulator (the same allowance as
tests/test_schema_fuzz.py); run it with ``--exclude-checks not_a_server_error``.
"""

from __future__ import annotations

import uuid

import schemathesis
from schemathesis.checks import not_a_server_error

DEPLOYMENT_503 = frozenset({"stream_not_served_here", "connector_unavailable"})


@schemathesis.check
def no_server_error(ctx, response, case):
    """``not_a_server_error``, less the two deployment 503s above."""
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("code") in DEPLOYMENT_503:
            return True
    return not_a_server_error(ctx, response, case)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """A positive case gets an ``Idempotency-Key`` of its own, as a real client
    sends a new key for each new action (docs/api.md): the generator draws the
    same few values ("0", "00") for every operation, and the same key with
    another request is a 422 by design (tests/test_idempotency.py tests that
    rule). The drawn value stays a prefix, so its shape is still fuzzed; a
    negative case keeps its key as drawn (an invalid key must be a 400)."""
    key = (case.headers or {}).get("Idempotency-Key")
    meta = getattr(case, "meta", None)
    if key is None or meta is None or meta.generation.mode.name != "POSITIVE":
        return
    case.headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4().hex}"
