"""The audit writer as bpmos's own core sees it: ``record()`` forwards to elog.

Why a port and not an import: the audit log app (``elog``) sits above the
project's core. ``elog.audit`` reads the request context (``bpmos.context``) and
the roles, so the core (accounts, the admin kit) importing ``elog.audit`` would
close a cycle, and the core must not know the apps above it
(docs/architecture.md). There is still exactly one audit writer,
``elog.audit.record``: ``ElogConfig.ready()`` registers it here when Django
starts, and this module only forwards to it. The apps above elog (runbooks,
lines, ...) keep calling ``elog.audit.record`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_writer: Callable[..., Any] | None = None


def writer_register(writer: Callable[..., Any]) -> None:
    """Install the audit writer (``elog.audit.record``; called once at start-up)."""
    global _writer
    _writer = writer


def record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    before: Any = None,
    after: Any = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> Any:
    """Append one audit record through the registered writer (same arguments
    and transaction rules as ``elog.audit.record``)."""
    if _writer is None:
        raise ImproperlyConfigured(
            "No audit writer is registered: the 'elog' app must be installed."
        )
    return _writer(
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        target_type=target_type,
        target_id=target_id,
    )
