"""The compliance score API: the newest snapshot of the Aadhaar Ready %.
Thin: the rules are ``passports.conformity``'s, the sums ``compliance.score``'s."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from bpmos.views import BpmosAPIView
from compliance import score
from compliance.api import score_serializers as s


@extend_schema(tags=["compliance"])
class ComplianceScoreView(BpmosAPIView):
    """The Aadhaar Ready %: the share of passports whose identity record
    passes every conformity rule of its kind, overall and per kind, and the
    rules failed most. Read from the newest snapshot (Celery beat computes one
    every 10 minutes); computed once here when there is none yet."""

    @extend_schema(responses={200: s.ComplianceScoreSerializer})
    def get(self, request):
        snapshot = score.score_current()
        return self.respond(s.ComplianceScoreSerializer, score.score_body(snapshot))
