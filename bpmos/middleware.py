"""Request id, structured request log, and the error envelope outside DRF."""

import re
import time
import uuid

import structlog
from django.conf import settings
from django.db import DatabaseError
from ipware import get_client_ip

from bpmos import context, errors

log = structlog.get_logger("bpmos.request")

# Accept a caller's X-Request-ID only if it is short and plain (it ends up in logs
# and in a response header). fullmatch, not ``$``: ``$`` also matches before a
# trailing newline, and a newline in a header value makes Django raise.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _is_api(request) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def _client_address(request) -> str | None:
    """The client's address for the logs and the audit trail: REMOTE_ADDR, or
    behind ``BPMOS_NUM_PROXIES`` reverse proxies the address the nearest of
    them saw (never an X-Forwarded-For entry the client wrote itself)."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if proxies:
        ip, _ = get_client_ip(request, proxy_count=proxies)
        if ip:
            return str(ip)
    return request.META.get("REMOTE_ADDR")


def body_limit(request) -> int:
    """The most bytes an API request body may have: ``BPMOS_MAX_UPLOAD_BYTES``
    for a multipart upload, ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    (``BPMOS_MAX_BODY_BYTES``) for anything else."""
    if request.content_type == "multipart/form-data":
        return settings.BPMOS_MAX_UPLOAD_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestContextMiddleware:
    """Give every request an id, bind it for logs and audit, log one JSON line.

    The id is the caller's ``X-Request-ID`` when it is well-formed, else a new
    UUID; it is echoed on every response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = (
            incoming if _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        )
        request.request_id = request_id
        address = _client_address(request)
        source = (
            "api"
            if _is_api(request)
            else "admin"
            if request.path.startswith("/admin")
            else "web"
        )
        token = context.bind(
            context.RequestContext(
                request_id=request_id, client_address=address, source=source
            )
        )
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        user = getattr(request, "user", None)
        try:
            authenticated = bool(user is not None and user.is_authenticated)
        except DatabaseError:  # a session user read from a database that is down
            user, authenticated = None, False
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user=user.get_username() if authenticated else None,
            role=getattr(user, "role", None) if authenticated else None,
            client=address,
        )
        structlog.contextvars.clear_contextvars()
        return response


NUL_MESSAGE = "May not contain NUL characters."


def _query_with_nul(request):
    """A 400 naming the query parameters that hold a NUL character, or None.

    No parameter of ours can hold one, and PostgreSQL refuses it in text
    (``DataError``, a 500 from every view that reads a parameter by hand:
    ``?identifier=%00``). Bodies are covered by DRF's fields, which refuse NUL.
    """
    named = sorted(
        {
            name
            for name, values in request.GET.lists()
            if "\x00" in name or any("\x00" in value for value in values)
        }
    )
    if not named:
        return None
    return errors.envelope_response(
        request,
        400,
        message=f"Invalid input. {named[0]}: {NUL_MESSAGE}",
        code="validation_error",
        details={name.replace("\x00", "\ufffd"): [NUL_MESSAGE] for name in named},
    )


class ApiErrorMiddleware:
    """Turn anything that is not already an envelope under /api/ into one.

    DRF views answer errors through ``bpmos.errors.api_exception_handler``; this
    catches what never reaches DRF: unknown paths (Django's 404 page), errors
    raised outside views or in other middleware (a disallowed Host header), and
    crashes, so no HTML error page or stack trace reaches an API client. It sits
    outside the other middleware, so the replacement keeps the headers they set
    on the page it replaces (security headers, ``Allow``, ``Vary``).
    """

    _BODY_HEADERS = frozenset({"content-type", "content-length"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = _query_with_nul(request) if _is_api(request) else None
        response = refused or self.get_response(request)
        if (
            _is_api(request)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            status = response.status_code
            envelope = errors.envelope_response(
                request,
                status,
                message=errors.message_for_status(status),
                code=errors.code_for_status(status),
            )
            for header, value in response.items():
                if header.lower() not in self._BODY_HEADERS:
                    envelope[header] = value
            return envelope
        return response

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        down = errors.dependency_down(exception)
        if down is not None:
            exception = down
        if isinstance(exception, errors.DomainError):
            return errors.envelope_response(
                request,
                exception.status_code,
                message=exception.message,
                code=exception.code,
                details=exception.details,
            )
        log.exception("unhandled_exception", exc_type=type(exception).__name__)
        return errors.envelope_response(
            request, 500, message=errors.message_for_status(500), code="server_error"
        )


class BodySizeLimitMiddleware:
    """413 in the envelope, before anything reads it, for an API request whose
    declared body is larger than ``body_limit``. (A body without a
    Content-Length is bounded where it is read: ``bpmos.parsers.JSONParser``
    reads at most the limit, Django's form parsing likewise.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = body_limit(request)
            if length > limit:
                return errors.envelope_response(
                    request,
                    413,
                    message=(
                        f"The body is {length} bytes; a request may carry at most "
                        f"{limit} bytes. Send large loads in several requests."
                    ),
                    code="payload_too_large",
                    details={"limit": limit, "length": length},
                )
        return self.get_response(request)
