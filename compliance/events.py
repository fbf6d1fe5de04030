"""Live events of compliance returns (topic ``compliance``, the compliance
readers'): a return built (a draft awaiting approval) and a return approved.
The role dashboards hear them too (``bpmos.dashboards.live``): a draft is on
the supervisors' attention list until it is approved."""

from typing import TypedDict

from bpmos.events import Event, declare


class ReturnPayload(TypedDict):
    id: int
    status: str
    periodStart: str
    periodEnd: str
    financialYear: str | None
    rowCount: int


RETURN_EVENTS = {
    change: declare(f"compliance_return.{change}", ReturnPayload)
    for change in ("built", "approved")
}


def return_event(ret, change: str) -> Event:
    """The event for a return ``change`` (built, approved)."""
    payload: ReturnPayload = {
        "id": ret.pk,
        "status": ret.status,
        "periodStart": ret.period_start.isoformat(),
        "periodEnd": ret.period_end.isoformat(),
        "financialYear": ret.financial_year or None,
        "rowCount": ret.row_count,
    }
    return Event(name=RETURN_EVENTS[change], topics=("compliance",), data=payload)
