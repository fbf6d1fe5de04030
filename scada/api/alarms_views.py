"""Alert rules, alarms and their ISA-18.2 actions, floods and chattering, and
``POST /api/alerts/process``. Thin: reads from ``alarms_selectors``, writes
from ``scada.alarms`` and ``scada.alarm_rules``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from bpmos.jsonfields import read_body
from bpmos.views import ApiViewMixin, BpmosAPIView
from scada import alarm_rules, alarms
from scada.api import alarms_selectors as selectors
from scada.api import alarms_serializers as s
from scada.api.alarms_filters import AlarmFilterSet, AlertRuleFilterSet, FloodFilterSet

_TAGS = ["alarms"]
# Named as the schema's path template names it ({pk} becomes {id}): a "pk"
# parameter would be a second path parameter the template does not have.
_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The id."
)


# --- alert rules ---


@extend_schema(tags=_TAGS)
class AlertRuleListView(ApiViewMixin, generics.ListAPIView):
    """Alert rules by name; filter ``tag`` (name), ``enabled``, ``severity``.
    POST (admins) creates one: 201, or 400 naming the field."""

    serializer_class = s.AlertRuleSerializer
    filterset_class = AlertRuleFilterSet
    search_fields = ["name", "tag__tag_name"]

    def get_queryset(self):
        return selectors.alert_rule_list()

    @extend_schema(
        request=s.AlertRuleInputSerializer, responses={201: s.AlertRuleSerializer}
    )
    def post(self, request):
        data = self.validated(s.AlertRuleInputSerializer)
        rule = alarm_rules.alert_rule_create(data=data, actor=request.user)
        return self.respond(
            s.AlertRuleSerializer,
            selectors.alert_rule_get(rule_id=rule.pk),
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=_TAGS, parameters=[_ID])
class AlertRuleDetailView(BpmosAPIView):
    """One rule; PATCH and DELETE are the admins' (DELETE is 409 while the rule
    has an open alarm)."""

    @extend_schema(responses=s.AlertRuleSerializer)
    def get(self, request, pk: str):
        return self.respond(
            s.AlertRuleSerializer, selectors.alert_rule_get(rule_id=int(pk))
        )

    @extend_schema(request=s.AlertRuleInputSerializer, responses=s.AlertRuleSerializer)
    def patch(self, request, pk: str):
        body = s.AlertRuleInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        alarm_rules.alert_rule_update(
            rule_id=int(pk), data=body.validated_data, actor=request.user
        )
        return self.respond(
            s.AlertRuleSerializer, selectors.alert_rule_get(rule_id=int(pk))
        )

    @extend_schema(responses={204: None})
    def delete(self, request, pk: str):
        alarm_rules.alert_rule_delete(rule_id=int(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=_TAGS)
class AlertsProcessView(BpmosAPIView):
    """Run the alert rules now (what the beat task does every few seconds):
    recent readings no rule has seen, elapsed on/off delays, expired shelves,
    escalations, ended floods. Returns how many of each."""

    @extend_schema(request=None, responses=s.AlertsProcessResultSerializer)
    def post(self, request):
        read_body(request)
        counts = alarms.alerts_process(actor=request.user)
        return self.respond(s.AlertsProcessResultSerializer, counts)


# --- alarms ---


@extend_schema(tags=_TAGS)
class AlarmListView(generics.ListAPIView):
    """Alarms, newest activation first. Filters: ``state`` (repeatable),
    ``severity``, ``tag``, ``area``, ``kind``, ``active``, ``open``, ``rule``,
    ``connector``, ``from``/``to`` (activation time)."""

    serializer_class = s.AlarmSerializer
    filterset_class = AlarmFilterSet
    search_fields = ["message", "tag_name"]

    def get_queryset(self):
        return selectors.alarm_list()


def _detail(pk: int) -> Response:
    return Response(s.AlarmDetailSerializer(selectors.alarm_get(alarm_id=pk)).data)


@extend_schema(tags=_TAGS, parameters=[_ID])
class AlarmDetailView(BpmosAPIView):
    """One alarm and its history."""

    @extend_schema(responses=s.AlarmDetailSerializer)
    def get(self, request, pk: str):
        return _detail(int(pk))


@extend_schema(tags=_TAGS, parameters=[_ID])
class AlarmAcknowledgeView(BpmosAPIView):
    """Acknowledge: unack_active -> ack_active, unack_rtn -> normal (closed);
    409 from any other state."""

    @extend_schema(request=None, responses=s.AlarmDetailSerializer)
    def post(self, request, pk: str):
        read_body(request)
        alarms.alarm_acknowledge(alarm_id=int(pk), actor=request.user)
        return _detail(int(pk))


@extend_schema(tags=_TAGS, parameters=[_ID])
class AlarmShelveView(BpmosAPIView):
    """Shelve for ``minutes`` or ``until`` (at most 24 h) with a reason; 409
    unless it is unack_active, ack_active or unack_rtn."""

    @extend_schema(request=s.AlarmShelveSerializer, responses=s.AlarmDetailSerializer)
    def post(self, request, pk: str):
        body = self.validated(s.AlarmShelveSerializer)
        alarms.alarm_shelve(
            alarm_id=int(pk),
            actor=request.user,
            reason=body["reason"],
            minutes=body.get("minutes"),
            until=body.get("until"),
        )
        return _detail(int(pk))


class _ReasonAction(BpmosAPIView):
    service = staticmethod(alarms.alarm_suppress)

    @extend_schema(
        tags=_TAGS,
        parameters=[_ID],
        request=s.AlarmReasonSerializer,
        responses=s.AlarmDetailSerializer,
    )
    def post(self, request, pk: str):
        body = self.validated(s.AlarmReasonSerializer)
        self.service(alarm_id=int(pk), actor=request.user, reason=body["reason"])
        return _detail(int(pk))


class _PlainAction(BpmosAPIView):
    service = staticmethod(alarms.alarm_unshelve)

    @extend_schema(
        tags=_TAGS, parameters=[_ID], request=None, responses=s.AlarmDetailSerializer
    )
    def post(self, request, pk: str):
        read_body(request)
        self.service(alarm_id=int(pk), actor=request.user)
        return _detail(int(pk))


class AlarmUnshelveView(_PlainAction):
    """Unshelve: back to the underlying state; 409 unless shelved."""

    service = staticmethod(alarms.alarm_unshelve)


class AlarmSuppressView(_ReasonAction):
    """Suppress by design (admins), with a reason."""

    service = staticmethod(alarms.alarm_suppress)


class AlarmUnsuppressView(_PlainAction):
    """End a suppression (admins); 409 unless suppressed."""

    service = staticmethod(alarms.alarm_unsuppress)


class AlarmOutOfServiceView(_ReasonAction):
    """Take out of service (admins), with a reason."""

    service = staticmethod(alarms.alarm_remove_from_service)


class AlarmReturnToServiceView(_PlainAction):
    """Return to service (admins); 409 unless out of service."""

    service = staticmethod(alarms.alarm_return_to_service)


# --- floods and chattering ---


@extend_schema(tags=_TAGS)
class FloodListView(generics.ListAPIView):
    """Alarm floods (more than 10 activations in 10 minutes in one area),
    newest first; ``ongoing`` and ``area`` filter."""

    serializer_class = s.AlarmFloodSerializer
    filterset_class = FloodFilterSet

    def get_queryset(self):
        return selectors.flood_list()


@extend_schema(tags=_TAGS)
class ChatteringView(BpmosAPIView):
    """Rules that chattered (3 or more activations within 60 s) between
    ``since`` and ``until`` (default: the last 24 hours), the worst first."""

    @extend_schema(
        parameters=[s.AlarmChatteringQuerySerializer],
        responses=s.AlarmChatteringSerializer(many=True),
    )
    def get(self, request):
        query = self.validated(s.AlarmChatteringQuerySerializer, query=True)
        report = selectors.chattering_report(since=query["since"], until=query["until"])
        return self.respond(s.AlarmChatteringSerializer, report, many=True)
