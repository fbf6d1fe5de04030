"""Idempotency keys for the API's POSTs (docs/api.md, "Idempotency-Key").

A view says how a retried POST is made safe with a class attribute
``idempotency`` set to one of the modes below; unset means ``ATOMIC``.
"""

# The view's work, the key's record and the stored answer commit in one
# transaction (the default): a crash leaves either all of them or none.
ATOMIC = "atomic"
# The view talks to a device or another system outside any transaction (BMS
# provisioning, OPC UA and LIMS reads, CMMS sends): the key is held by a lease
# while it runs and the answer is stored right after.
OUTSIDE = "outside"
# The header is ignored: answers that carry a secret (a stream ticket) or
# endpoints that are idempotent by themselves (logout).
EXEMPT = "exempt"

MODES = (ATOMIC, OUTSIDE, EXEMPT)
