"""GET /api/health: is the database, the channel layer and the Celery broker up?"""

import asyncio
import time
import uuid

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bpmos.celery import app as celery_app
from bpmos.errors import envelope

log = structlog.get_logger(__name__)
_TIMEOUT = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_channel_layer() -> None:
    layer = get_channel_layer()

    async def roundtrip():
        channel = await layer.new_channel("health.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("channel layer returned a different message")

    async def bounded():
        # A Redis that accepts the connection but never answers would otherwise
        # hold the health request (and its worker) forever.
        try:
            await asyncio.wait_for(roundtrip(), _TIMEOUT)
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {_TIMEOUT:g}s") from exc

    async_to_sync(bounded)()


def _check_broker() -> None:
    # Socket timeouts for the same reason: ensure_connection's timeout bounds the
    # retries, not a connected socket that never answers.
    with celery_app.connection_for_write(
        connect_timeout=_TIMEOUT,
        transport_options={
            "socket_timeout": _TIMEOUT,
            "socket_connect_timeout": _TIMEOUT,
        },
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=_TIMEOUT)


CHECKS = {
    "database": _check_database,
    "channel_layer": _check_channel_layer,
    "broker": _check_broker,
}


def run_checks() -> dict[str, dict]:
    """Run every check; each reports ok/down, how long it took and why it failed."""
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # a health check reports failures, it does not raise
            # The endpoint is public: name the kind of failure, keep the message
            # (which can name internal hosts and ports) in the log.
            log.warning(
                "health_check_failed", check=name, error=f"{type(exc).__name__}: {exc}"
            )
            results[name] = {"status": "down", "error": type(exc).__name__}
        else:
            results[name] = {"status": "ok"}
        results[name]["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return results


class HealthView(APIView):
    """200 when every dependency answers; 503 in the error envelope otherwise."""

    authentication_classes: list = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            )
        }
    )
    def get(self, request):
        checks = run_checks()
        down = sorted(
            name for name, result in checks.items() if result["status"] != "ok"
        )
        if down:
            body = envelope(
                message=f"Unavailable: {', '.join(down)}.",
                code="dependency_unavailable",
                details={"checks": checks},
                request_id=getattr(request, "request_id", None),
            )
            return Response(body, status=503)
        return Response({"status": "ok", "checks": checks})
