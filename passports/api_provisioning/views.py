"""BMS provisioning endpoints: provision a pack over CAN, list its attempts.

Views resolve the identifier, call ``passports.provisioning`` and serialize;
who may call what is declared in ``bpmos/access.py``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from bpmos.idempotency import OUTSIDE
from bpmos.views import BpmosAPIView
from passports import provisioning, selectors
from passports.api_provisioning import serializers as s

_IDENTIFIER = OpenApiParameter(
    "identifier",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="UUID, BPAN, serial, barcode or RFID of the pack.",
)


@extend_schema(tags=["passports"], parameters=[_IDENTIFIER])
class ProvisionView(BpmosAPIView):
    """Write the pack's identity, rating and limits to its BMS over CAN and read
    them back. 201 with the confirmed attempt; 409 ``illegal_transition`` before
    anything is sent (not a pack, QA not passed), 409 ``bms_refused`` (the BMS
    answered a negative response code), 502 ``bms_mismatch`` (it confirmed other
    values), 503 ``bms_timeout``/``bms_unavailable``. Every attempt that reached
    the bus is listed under ``/provisioning``."""

    # The CAN transfer runs outside any transaction (passports.provisioning).
    idempotency = OUTSIDE

    @extend_schema(
        request=s.ProvisionRequestSerializer,
        responses={
            201: s.ProvisionResponseSerializer,
            502: OpenApiResponse(
                description="The BMS confirmed other values than were written "
                "(bms_mismatch) or answered garbage (bms_bad_answer); the envelope."
            ),
        },
    )
    def post(self, request, identifier: str):
        data = s.ProvisionRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        passport = selectors.resolve(identifier)
        attempt = provisioning.passport_provision(
            passport_id=passport.pk,
            node_id=values.get("nodeId"),
            config=values.get("config"),
            expected_version=values.get("expectedVersion"),
            actor=request.user,
        )
        passport.refresh_from_db(fields=["state", "version"])
        body = {"attempt": attempt, "passport": passport}
        return Response(
            s.ProvisionResponseSerializer(body).data, status=status.HTTP_201_CREATED
        )


@extend_schema(tags=["passports"], parameters=[_IDENTIFIER])
class ProvisioningListView(generics.ListAPIView):
    """The pack's provisioning attempts, newest first."""

    serializer_class = s.ProvisioningAttemptSerializer
    filter_backends: list = []

    def get_queryset(self):
        passport = selectors.resolve(self.kwargs["identifier"])
        return provisioning.attempt_list(passport=passport)
