"""Live events of elog (topic ``audit``, the audit readers'): the audit
chain's verification state changed (``elog.chain_status``)."""

from typing import Any, TypedDict

from bpmos.events import Event, declare


class ChainStatusPayload(TypedDict):
    ok: bool
    checked: int
    headSeq: int | None
    verifiedAt: str
    firstBroken: dict[str, Any] | None


CHAIN_STATUS_CHANGED = declare("audit_chain.changed", ChainStatusPayload)


def chain_status_event(status: dict[str, Any]) -> Event:
    """The event for a new chain verification state (what was stored)."""
    payload: ChainStatusPayload = {
        "ok": status["ok"],
        "checked": status["checked"],
        "headSeq": status["headSeq"],
        "verifiedAt": status["verifiedAt"],
        "firstBroken": status["firstBroken"],
    }
    return Event(name=CHAIN_STATUS_CHANGED, topics=("audit",), data=payload)
