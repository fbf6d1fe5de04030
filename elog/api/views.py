"""Audit log endpoints (read-only list and detail, chain verification) and the
electronic shift log's (write, list, acknowledge a handover)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from bpmos.views import BpmosAPIView
from elog import selectors, services, shiftlog
from elog.api import serializers as s
from elog.filters import AuditRecordFilterSet, ShiftLogEntryFilterSet


@extend_schema(tags=["audit"])
class AuditRecordListView(generics.ListAPIView):
    """The audit log, newest first; filter, search and order it."""

    queryset = selectors.audit_record_list()
    serializer_class = s.AuditRecordSerializer
    filterset_class = AuditRecordFilterSet
    search_fields = ["action", "actor_username", "target_repr", "request_id"]
    ordering_fields = ["seq", "occurred_at"]


@extend_schema(tags=["audit"])
class AuditRecordDetailView(generics.RetrieveAPIView):
    """One audit record."""

    queryset = selectors.audit_record_list()
    serializer_class = s.AuditRecordSerializer


class AuditVerifyView(BpmosAPIView):
    """Walk the hash chain and name the first altered, removed or inserted record.

    ``head_seq``/``head_hash`` of an ``ok`` result are worth keeping outside the
    database: passed back as ``anchor_seq``/``anchor_hash`` they also reveal
    removal of the newest records, which the chain alone cannot show.
    """

    @extend_schema(
        operation_id="audit_verify",
        tags=["audit"],
        parameters=[s.VerifyQuerySerializer],
        responses={200: s.VerifyResultSerializer},
    )
    def get(self, request):
        query = self.validated(s.VerifyQuerySerializer, query=True)
        result = services.audit_chain_verify(
            anchor_seq=query.get("anchor_seq"),
            anchor_hash=query.get("anchor_hash"),
        )
        return Response(result.as_dict())


# --- the electronic shift log (docs/logs.md) ---


class ShiftLogWriteView(BpmosAPIView):
    """Write a shift-log entry (connectors contract §5): a note, a handover
    (supervisors and above), a correction (``corrects``: the entry it
    corrects), an incident, safety, quality or maintenance entry.

    ``operator_id`` must be the token's user and ``plant_id`` this plant's
    (400 naming the field otherwise, as for an unknown ``entry_type``, an
    empty or oversized ``body`` or ``metadata`` that is not a small object).
    Entries are immutable: a correction is a new entry."""

    @extend_schema(
        operation_id="logs_write",
        tags=["shift log"],
        request=s.ShiftLogWriteSerializer,
        responses={201: s.ShiftLogEntrySerializer},
    )
    def post(self, request):
        body = self.validated(s.ShiftLogWriteSerializer)
        entry = shiftlog.entry_write(
            actor=request.user,
            plant_id=body["plant_id"],
            operator_id=body["operator_id"],
            operator_name=body["operator_name"],
            entry_type=body["entry_type"],
            body=body["body"],
            metadata=body["metadata"],
            line=body.get("line", ""),
            corrects_id=body["corrects"],
        )
        return self.respond(s.ShiftLogEntrySerializer, entry, status=201)


@extend_schema(tags=["shift log"])
class ShiftLogEntryListView(generics.ListAPIView):
    """The shift log, newest first; filter by shift (any time in it), entry
    types, line, operator, automatic, from/to; search the body and names."""

    queryset = selectors.shift_log_entry_list()
    serializer_class = s.ShiftLogEntrySerializer
    filterset_class = ShiftLogEntryFilterSet
    search_fields = ["body", "operator_name"]
    ordering_fields = ["created_at", "id"]


class ShiftLogAcknowledgeView(BpmosAPIView):
    """The incoming supervisor acknowledges a handover (once, during the shift
    that follows it; not its own writer): 201 with the ``handover_ack`` entry;
    404 for no such handover, 409 otherwise."""

    @extend_schema(
        operation_id="logs_shift_acknowledge",
        tags=["shift log"],
        request=s.ShiftLogAcknowledgeSerializer,
        responses={201: s.ShiftLogEntrySerializer},
    )
    def post(self, request, pk: str):
        body = self.validated(s.ShiftLogAcknowledgeSerializer)
        entry = shiftlog.handover_acknowledge(
            handover_id=int(pk), actor=request.user, body=body["body"]
        )
        return self.respond(s.ShiftLogEntrySerializer, entry, status=201)
