"""Per-request context (request id, client address) visible to services.

Set by ``RequestContextMiddleware``; read by the audit writer so every audit
record knows where its write came from without views passing it along. Celery
tasks and management commands run with the empty default.
"""

from contextvars import ContextVar
from dataclasses import dataclass

# Where work comes from (``RequestContext.source``, an audit record's
# ``source``): the API, the admin, the pages (bpmos.middleware), a Celery task,
# anything else.
SOURCES = ("api", "admin", "web", "task", "system")


@dataclass(frozen=True)
class RequestContext:
    """Where the current unit of work came from."""

    request_id: str = ""
    client_address: str | None = None
    source: str = "system"  # one of SOURCES


_current: ContextVar[RequestContext] = ContextVar(
    "bpmos_request",
    default=RequestContext(),  # noqa: B039 - frozen dataclass, immutable
)


def current() -> RequestContext:
    """The context of the request (or task) being served."""
    return _current.get()


def bind(ctx: RequestContext):
    """Make ``ctx`` current; returns a token for ``reset``."""
    return _current.set(ctx)


def reset(token) -> None:
    """Restore the context that was current before ``bind``."""
    _current.reset(token)
