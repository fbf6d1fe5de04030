"""Audit log endpoints: read-only list and detail, and chain verification."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from bpmos.views import BpmosAPIView
from elog import selectors, services
from elog.api import serializers as s
from elog.filters import AuditRecordFilterSet


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
