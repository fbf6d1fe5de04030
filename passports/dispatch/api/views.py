"""The dispatch desk's endpoints (dispatch contract; docs/dispatch.md).

Thin views: they check the body's types, find the product and call
``passports.dispatch.services`` (every move: lock, rules, ledger, audit, live
events) or read ``passports.dispatch.selectors``. The live stream itself is an
ASGI consumer (``passports.dispatch.api.stream``); the view of its path below
only answers requests that reach a WSGI server, which cannot stream. The
dashboard's ``/api/dashboard/status`` also counts machines, so it is a read
model of ``bpmos.dashboards`` (``bpmos/dashboards/dispatch.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.response import Response

from bpmos.accounts.authentication import token_generation
from bpmos.errors import DependencyUnavailable, InvalidInput
from bpmos.idempotency import EXEMPT
from bpmos.listrows import RowsRendererMixin
from bpmos.textfields import NOT_BLANK_PATTERN
from bpmos.throttles import StreamTicketThrottle
from bpmos.views import BpmosAPIView
from passports.dispatch import selectors
from passports.dispatch import services as dispatch
from passports.dispatch.api import serializers as s
from passports.dispatch.api import tickets

_PRODUCT_ID = OpenApiParameter(
    "productId",
    OpenApiTypes.STR,
    required=True,
    description="The product's serial (or UUID, BPAN, barcode, RFID).",
    pattern=NOT_BLANK_PATTERN,
    allow_blank=False,
)
_TAGS = ["dispatch"]


def _body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _query_product(request):
    value = request.query_params.get("productId", "").strip()
    if not value:
        raise InvalidInput(
            "productId is required.",
            code="validation_error",
            details={"productId": ["This query parameter is required."]},
        )
    return selectors.product_get(product_id=value)


def _lifecycle_response(passport) -> Response:
    lifecycle = selectors.product_lifecycle(passport=passport)
    return Response(
        {"success": True, "lifecycle": s.LifecycleSerializer(lifecycle).data}
    )


def _move_to_past(data: dict, actor) -> Response:
    passport = selectors.product_get(product_id=data["productId"])
    reason = data.get("reason")
    passport, _ = dispatch.product_move_to_past(
        passport_id=passport.pk,
        job_id=data.get("jobId"),
        reason=dispatch.DISPATCHED_REASON if reason in (None, "") else reason,
        carrier=data.get("carrier"),
        actor=actor,
    )
    return _lifecycle_response(passport)


class DispatchableView(RowsRendererMixin, BpmosAPIView):
    """The dispatch dropdown: products that are live and may ship now."""

    @extend_schema(tags=_TAGS, responses=s.DispatchableListSerializer)
    def get(self, request):
        # values() rows printed as DispatchableProductSerializer prints
        # them (docs/performance.md, "The 50-row list pages").
        products = s.dispatchable_product_rows(selectors.dispatchable_rows())
        return Response({"success": True, "products": products, "count": len(products)})

    @extend_schema(
        tags=_TAGS,
        request=s.MoveToPastInSerializer,
        responses=s.LifecycleResponseSerializer,
        description=(
            'Move a live product to past (ON → OFF). Reason "dispatched" (the '
            "default) dispatches it: custody passes to the carrier, and a pack "
            "on hold, failed in QA or not warehoused is refused (409). Any other "
            "reason only takes it off the desk."
        ),
    )
    def post(self, request):
        return _move_to_past(_body(s.MoveToPastInSerializer, request), request.user)


class LifecycleView(BpmosAPIView):
    """A product's whole lifecycle, and the desk's actions on it."""

    @extend_schema(
        tags=_TAGS, parameters=[_PRODUCT_ID], responses=s.LifecycleResponseSerializer
    )
    def get(self, request):
        return _lifecycle_response(_query_product(request))

    @extend_schema(
        tags=_TAGS,
        request=s.LifecycleActionInSerializer,
        responses=s.LifecycleResponseSerializer,
        description=(
            'Actions: `move_to_past` (reason defaults to "dispatched", which '
            "ships it), `reactivate` (back to live; only while it may still "
            'ship), `update_state` with `state` "OFF" (move to past, reason '
            'defaults to "moved to past") or "ON" (reactivate). Unknown action: '
            "400; illegal move: 409 and nothing changes."
        ),
    )
    def post(self, request):
        data = _body(s.LifecycleActionInSerializer, request)
        action = data["action"]
        if action == "move_to_past":
            return _move_to_past(data, request.user)
        if action not in ("reactivate", "update_state"):
            raise InvalidInput(
                f"Unknown action {action!r}.",
                code="validation_error",
                details={"action": [f"One of {', '.join(s.LIFECYCLE_ACTIONS)}."]},
            )
        passport = selectors.product_get(product_id=data["productId"])
        if action == "reactivate":
            passport, _ = dispatch.product_reactivate(
                passport_id=passport.pk,
                job_id=data.get("jobId"),
                reason=data.get("reason"),
                actor=request.user,
            )
        else:
            passport, _ = dispatch.product_state_update(
                passport_id=passport.pk,
                job_id=data.get("jobId"),
                state=data.get("state"),
                reason=data.get("reason"),
                carrier=data.get("carrier"),
                actor=request.user,
            )
        return _lifecycle_response(passport)


class MoveToPastView(BpmosAPIView):
    """Legacy: move a product to past (the lifecycle API's move_to_past), and
    its transition history."""

    @extend_schema(
        tags=_TAGS, parameters=[_PRODUCT_ID], responses=s.TransitionHistorySerializer
    )
    def get(self, request):
        passport = _query_product(request)
        transitions = selectors.product_transitions(passport=passport)
        return Response(
            {
                "success": True,
                "productId": passport.serial,
                "transitions": s.TransitionSerializer(transitions, many=True).data,
            }
        )

    @extend_schema(
        tags=_TAGS,
        request=s.MoveToPastInSerializer,
        responses=s.LifecycleResponseSerializer,
    )
    def post(self, request):
        return _move_to_past(_body(s.MoveToPastInSerializer, request), request.user)


class StreamView(BpmosAPIView):
    """The live stream (Server-Sent Events), served by the ASGI server (daphne).

    A WSGI server cannot hold the connection open: when a request for this path
    reaches one (the reverse proxy does not send it to daphne), it answers 503
    ``stream_not_served_here``. docs/dispatch.md describes the events.
    """

    @extend_schema(
        tags=_TAGS,
        parameters=[
            OpenApiParameter(
                "ticket",
                OpenApiTypes.STR,
                description="A stream ticket, for clients that cannot send the "
                "Authorization header (plain EventSource).",
            ),
            OpenApiParameter(
                "lastEventId",
                OpenApiTypes.INT,
                description="Resume after this event id (as the Last-Event-ID "
                "header does).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                description="Sent by EventSource on reconnection: resume after it.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description='`data: {"type": "connection_established", …}` then '
                "`product_moved_to_past`, `dispatchable_products_update` and "
                "`product_reactivated` events, each with its outbox `id:`.",
            )
        },
    )
    def get(self, request):
        raise DependencyUnavailable(
            "The live stream is served by the ASGI server; route "
            "/api/live-products/dispatchable/stream to daphne (docs/deploy.md).",
            code="stream_not_served_here",
        )


class StreamTicketView(BpmosAPIView):
    """A single-use ticket that opens the stream from a plain EventSource."""

    # The answer is a single-use secret: never stored, never replayed.
    idempotency = EXEMPT
    throttle_classes = [StreamTicketThrottle]

    @extend_schema(tags=_TAGS, request=None, responses=s.StreamTicketSerializer)
    def post(self, request):
        expires_at = datetime.fromtimestamp(request.auth["exp"], tz=UTC)
        ticket = tickets.ticket_issue(
            user_id=request.user.pk,
            token_expires_at=expires_at,
            token_generation=token_generation(request.auth),
        )
        return Response(
            {
                "success": True,
                "ticket": ticket,
                "expiresIn": settings.BPMOS_SSE_TICKET_SECONDS,
                "url": f"/api/live-products/dispatchable/stream?ticket={ticket}",
            }
        )
