"""The one shape of ``GET /api/logs`` (control-UI contract group VII) and the
interface every app's log source implements.

``/api/logs`` is one immutable, filterable stream over several apps' records:
the audit log and the electronic shift log (elog), passport ledger events
(passports), alarms (scada) and system events (connector failures,
escalations). Each app turns its own rows into ``LogEvent`` through a
*source*: a function ``(LogQuery) -> list[LogEvent]`` returning at most
``query.limit`` events, newest first, strictly older than ``query.before``
(the cursor), matching the query's filters, and beside it a *plan*
(``bpmos.logsource.Plan``): the same page as one SELECT of common columns and
how a row of it becomes an event (the source is its plan run alone). The read
model in ``bpmos/dashboards/logs.py`` runs the plans of every source the
categories allow as one UNION ALL ordered by ``(timestamp, id)`` descending,
so a page costs one statement (each part an indexed walk) and never a
COUNT(*).

This module is bpmos's core: apps import it (never ``bpmos.dashboards``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# category: which stream an event comes from (the ``category`` filter)
AUDIT = "audit"  # elog.AuditRecord: every write
SHIFT_LOG = "shift_log"  # elog's electronic shift log
LEDGER = "ledger"  # passports' ledger events
ALARM = "alarm"  # scada's alarms (raised, acknowledged, cleared, ...)
SYSTEM = "system"  # connector failures, escalations, deliveries that failed
CATEGORIES: tuple[str, ...] = (AUDIT, SHIFT_LOG, LEDGER, ALARM, SYSTEM)

# severity, lowest first (the ``severity`` filter takes one or more)
INFO = "info"
WARNING = "warning"
ERROR = "error"
CRITICAL = "critical"
SEVERITIES: tuple[str, ...] = (INFO, WARNING, ERROR, CRITICAL)


@dataclass(frozen=True)
class LogTarget:
    type: str  # "passport", "workorder", "alarm", ... (what the UI links to)
    id: str
    label: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id, "label": self.label}


@dataclass(frozen=True)
class LogEvent:
    """One item of ``GET /api/logs`` (camelCase on the wire: ``as_dict``).

    ``id`` is stable and unique across sources: ``"<category>:<pk>"``
    (``"audit:1042"``, ``"ledger:77"``). ``timestamp`` is aware (UTC on the
    wire). ``actor`` is a username, or None for the system."""

    id: str
    timestamp: datetime
    category: str
    severity: str
    actor: str | None
    action: str
    target: LogTarget | None
    message: str
    source: str  # "api", "admin", "task", "collector", "system", ...

    @property
    def cursor(self) -> tuple[datetime, str]:
        return (self.timestamp, self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "category": self.category,
            "severity": self.severity,
            "actor": self.actor,
            "action": self.action,
            "target": self.target.as_dict() if self.target else None,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True)
class LogQuery:
    """What a source must answer (every filter already validated)."""

    limit: int
    categories: frozenset[str] = frozenset(CATEGORIES)
    severities: frozenset[str] | None = None  # None: all
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    search: str | None = None  # case-insensitive, across message and target
    before: tuple[datetime, str] | None = None  # cursor: strictly older than this
    role: str | None = None  # the reader's role (sources may hide rows by it)
    extra: dict[str, Any] = field(default_factory=dict)


class LogSource(Protocol):
    def __call__(self, query: LogQuery) -> list[LogEvent]: ...
