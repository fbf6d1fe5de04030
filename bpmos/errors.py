"""Domain errors and the one error envelope (docs/design.md §4).

Every error from every ``/api/`` path leaves as::

    {"success": false, "error": "<for a person>", "code": "<stable_code>",
     "details": {...}, "request_id": "<id>"}

Services raise the domain errors below; ``api_exception_handler`` (DRF) and
``bpmos.middleware.ApiErrorMiddleware`` (everything outside DRF: unknown paths,
crashes) turn them into that envelope.
"""

from __future__ import annotations

from typing import Any

import structlog
from django import db
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

try:  # Redis is the production cache and channel layer; not needed embedded.
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _REDIS_DOWN: tuple[type[Exception], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
    )
except ImportError:  # pragma: no cover
    _REDIS_DOWN = ()

log = structlog.get_logger(__name__)


class DomainError(Exception):
    """A business rule refused the request; carries status, code and details."""

    status_code = 400
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(DomainError):
    """Input that passed parsing but breaks a rule (400)."""

    code = "invalid"


class NotFound(DomainError):
    """The named object does not exist (404)."""

    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    """An object-level rule refuses this user (403)."""

    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    """The request conflicts with the current state (409)."""

    status_code = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """A state machine refused the move (409)."""

    code = "illegal_transition"


class DependencyUnavailable(DomainError):
    """A database, broker or field device needed for this request is down (503)."""

    status_code = 503
    code = "dependency_unavailable"


# SQLSTATEs of a connection that failed or was cut (class 08), and of a
# server that is shutting down or starting up (57P01-57P03).
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _database_is_down(exc: db.Error) -> bool:
    """Whether a database error says the database cannot be reached, rather
    than that a statement failed (which stays a 500: it is our bug)."""
    if isinstance(exc, db.InterfaceError):  # e.g. "connection already closed"
        return True
    if not isinstance(exc, db.OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(_CONNECTION_SQLSTATES)
    if type(cause).__module__.startswith("psycopg"):
        # No SQLSTATE: the failure happened before or outside a statement
        # (connection refused, timed out, server closed the connection).
        return True
    # SQLite (embedded): the file cannot be opened.
    return "unable to open database" in str(exc)


def dependency_down(exc: BaseException) -> DependencyUnavailable | None:
    """The 503 for an exception that says a dependency is unreachable (the
    database, or Redis: the cache and the channel layer), else None. A
    dependency found down is logged here, once, for every caller."""
    if isinstance(exc, db.Error) and _database_is_down(exc):
        down = DependencyUnavailable(
            "The database is unavailable; try again shortly.",
            details={"dependency": "database"},
        )
    elif _REDIS_DOWN and isinstance(exc, _REDIS_DOWN):
        down = DependencyUnavailable(
            "Redis is unavailable; try again shortly.",
            details={"dependency": "redis"},
        )
    else:
        return None
    log.warning(
        "dependency_unavailable",
        dependency=down.details["dependency"],
        error=f"{type(exc).__name__}: {exc}",
    )
    return down


# DRF exception class -> stable code. Order matters: subclasses first.
_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.ValidationError, "validation_error"),
    (drf.ParseError, "parse_error"),
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "authentication_failed"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
]

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    429: "throttled",
    500: "server_error",
    503: "dependency_unavailable",
}

_STATUS_MESSAGES = {
    400: "The request is not valid.",
    401: "Authentication credentials were not provided or are not valid.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    429: "Too many requests; slow down.",
    500: "An unexpected error occurred; it has been logged.",
    503: "A service this request needs is unavailable.",
}


def code_for_status(status: int) -> str:
    """A stable code for a bare HTTP status."""
    return _STATUS_CODES.get(status, "error")


def message_for_status(status: int) -> str:
    """A message for a person for a bare HTTP status."""
    return _STATUS_MESSAGES.get(status, "The request failed.")


def envelope(
    *, message: str, code: str, details: Any = None, request_id: str | None
) -> dict[str, Any]:
    """The error body every API error uses."""
    return {
        "success": False,
        "error": message,
        "code": code,
        "details": details if details is not None else {},
        "request_id": request_id or "",
    }


def envelope_response(request, status: int, **kwargs: Any) -> JsonResponse:
    """A plain-Django JSON response carrying the envelope (outside DRF)."""
    body = envelope(request_id=getattr(request, "request_id", None), **kwargs)
    return JsonResponse(body, status=status)


def _first_message(detail: Any) -> str:
    """The first human message inside a DRF error detail (dict, list or string)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            if key in {"non_field_errors", "detail"}:
                return inner
            return f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _drf_code(exc: drf.APIException) -> str:
    for cls, code in _DRF_CODES:
        if isinstance(exc, cls):
            # simplejwt's InvalidToken carries a useful code of its own.
            if cls is drf.AuthenticationFailed and isinstance(exc.detail, dict):
                token_code = exc.detail.get("code")
                if token_code:
                    return str(token_code)
            return code
    return code_for_status(exc.status_code)


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF exception handler: every exception becomes the envelope.

    Unknown exceptions are logged with their stack trace and answered with a
    500 envelope; the client never sees the trace.
    """
    request = context.get("request")
    request_id = getattr(request, "request_id", None) if request else None
    headers: dict[str, str] = {}

    down = dependency_down(exc)
    if down is not None:
        exc = down
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(
            exc.message_dict
            if hasattr(exc, "error_dict")
            else {"non_field_errors": exc.messages}
        )

    if isinstance(exc, DomainError):
        status, code, message, details = (
            exc.status_code,
            exc.code,
            exc.message,
            exc.details,
        )
    elif isinstance(exc, drf.APIException):
        status = exc.status_code
        code = _drf_code(exc)
        if isinstance(exc, drf.ValidationError):
            details = (
                exc.detail
                if isinstance(exc.detail, dict)
                else {"non_field_errors": exc.detail}
            )
            message = "Invalid input. " + _first_message(details)
        else:
            details = {}
            message = _first_message(exc.detail)
            if isinstance(exc.detail, dict) and "messages" in exc.detail:
                details = {"messages": exc.detail["messages"]}
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    else:
        log.exception("unhandled_exception", exc_type=type(exc).__name__)
        status, code = 500, "server_error"
        message, details = message_for_status(500), {}

    set_rollback()
    return Response(
        envelope(message=message, code=code, details=details, request_id=request_id),
        status=status,
        headers=headers,
    )
