"""``Idempotency-Key`` on the API's POSTs (docs/api.md): a retried request
replays the first answer instead of acting twice.

A middleware rather than a view base class, so every POST of every app is
covered the same way, whichever DRF class it is built on. It runs last, as the
view is called: it authenticates the caller the way the view will (a key
belongs to a user), claims the key, then runs the view, by default inside one
transaction with the key's record (``bpmos.idempotency.ATOMIC``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from bpmos import errors
from bpmos.idempotency import ATOMIC, EXEMPT, OUTSIDE, services
from bpmos.idempotency.models import IdempotencyKey, KeyStatus

log = structlog.get_logger(__name__)


def view_mode(view_func: Any) -> str | None:
    """How a view's POSTs honour the header, or None when it is not an API view
    the header applies to (not DRF, or async)."""
    cls = getattr(view_func, "cls", None)
    if cls is None or asyncio.iscoroutinefunction(view_func):
        return None
    mode = getattr(cls, "idempotency", ATOMIC)
    return None if mode == EXEMPT else mode


def _authenticated_user(request, view_func) -> Any:
    """The user the view will see, or None (the view answers 401 itself).
    ``BpmosJWTAuthentication`` keeps the result on ``request``, so the view's
    own DRF request does not authenticate a second time."""
    authenticators = [auth() for auth in view_func.cls.authentication_classes]
    try:
        user = Request(request, authenticators=authenticators).user
    except APIException:
        return None
    return user if getattr(user, "is_authenticated", False) else None


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body), status=record.response_status)
    for name, value in record.response_headers.items():
        response[name] = value
    response[services.REPLAYED_HEADER] = "true"
    return response


def _refusal(request, exc: errors.DomainError) -> HttpResponse:
    response = errors.envelope_response(
        request,
        exc.status_code,
        message=exc.message,
        code=exc.code,
        details=exc.details,
    )
    if isinstance(exc, services.KeyInProgress):
        response["Retry-After"] = str(exc.details["retry_after_seconds"])
    return response


def _rendered(response: Any) -> Any:
    render = getattr(response, "render", None)
    if callable(render):
        response = render() or response
    return response


class IdempotencyMiddleware:
    """Honour ``Idempotency-Key`` on POSTs to /api/; without it, nothing changes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        key = request.headers.get(services.HEADER)
        if key is None or request.method != "POST":
            return None
        if not request.path.startswith("/api/"):
            return None
        mode = view_mode(view_func)
        if mode is None:
            return None
        user = _authenticated_user(request, view_func)
        if user is None:
            return None
        try:
            body = request.body
        except RequestDataTooBig:
            return None  # the view answers 413
        try:
            services.key_check(key)
            claim = services.key_claim(
                user=user,
                key=key,
                method=request.method,
                path=request.get_full_path(),
                fingerprint=services.request_fingerprint(
                    method=request.method, path=request.get_full_path(), body=body
                ),
            )
        except errors.DomainError as exc:
            return _refusal(request, exc)
        if isinstance(claim, IdempotencyKey):
            return _replay(claim)

        def call() -> Any:
            return _rendered(view_func(request, *view_args, **view_kwargs))

        if mode == OUTSIDE:
            return self._run_outside(request, claim, call)
        return self._run_atomic(request, claim, call)

    @staticmethod
    def _run_atomic(request, claim: services.Claim, call) -> Any:
        """The view's work and the key's answer commit together, or neither."""
        replay = None
        try:
            with transaction.atomic():
                record = services.key_lock(claim=claim)
                if record is not None and record.status == KeyStatus.COMPLETED:
                    replay = record
                elif record is None or record.locked_until != claim.lease:
                    raise services.KeyInProgress(
                        "A request with this Idempotency-Key is still running; "
                        "retry shortly.",
                        details={"retry_after_seconds": 1},
                    )
                else:
                    response = call()
                    if services.response_storable(response):
                        services.key_complete(claim=claim, response=response)
                        return response
                    if not getattr(response, "streaming", False):
                        # A 5xx or 429 is not kept: nothing of it commits
                        # either, so the retry it invites cannot act twice.
                        transaction.set_rollback(True)
        except services.KeyInProgress as exc:
            return _refusal(request, exc)
        except BaseException:
            services.key_release(claim=claim)
            raise
        if replay is not None:
            return _replay(replay)
        services.key_release(claim=claim)
        return response

    @staticmethod
    def _run_outside(request, claim: services.Claim, call) -> Any:
        """The view commits as it goes; the answer is stored right after."""
        try:
            response = call()
        except BaseException:
            services.key_release(claim=claim)
            raise
        if services.response_storable(response):
            with transaction.atomic():
                if not services.key_complete(claim=claim, response=response):
                    log.warning("idempotency_claim_lost", key_id=claim.pk)
        else:
            services.key_release(claim=claim)
        return response
