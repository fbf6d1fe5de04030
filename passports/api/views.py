"""The passport and registry API (docs/passports.md).

``{identifier}`` in a path is anything ``passports.selectors.resolve`` accepts:
UUID, BPAN (any case, with or without hyphens or spaces), serial, barcode or
RFID tag; 404 when nothing has it, 409 ``ambiguous_identifier`` when two
passports do. Views parse, call one service or selector and shape the answer;
the rules live in ``passports.services``, ``passports.ledger``,
``passports.lifecycle`` and ``passports.telemetry``. Who may call which route
is ``bpmos.access.POLICY``; who may record which event kind and who sees the
restricted attribute groups are its ``ACTIONS``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from bpmos import access
from bpmos.errors import DomainError, InvalidInput, NotFound
from bpmos.filters import FilterBackend, enum_value
from bpmos.listrows import ValuesListMixin
from bpmos.renderers import FirstRendererNegotiation
from bpmos.textfields import NOT_BLANK_PATTERN
from bpmos.throttles import PublicPassportThrottle
from bpmos.views import BpmosAPIView
from passports import (
    attributes,
    checkpoints,
    conformity,
    export,
    grants,
    ledger,
    qr,
    secondlife,
    selectors,
    services,
    signatures,
    telemetry,
)
from passports import bpan as bpan_rules
from passports.api import serializers as s
from passports.api.filters import PassportFilterSet
from passports.models import CustodianKind, EventKind, Passport, PassportEvent

_IDENTIFIER = OpenApiParameter(
    "identifier",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="UUID, BPAN, serial, barcode or RFID tag of the passport.",
)
_TAGS = ["passports"]
# Identifiers the public endpoint answers to. Barcode and RFID tag are
# restricted fields: answering to them would tell a stranger whose they are.
PUBLIC_IDENTIFIERS = frozenset({"uuid", "bpan", "serial"})


def may_see_restricted(user) -> bool:
    """Whether ``user`` sees the restricted attribute groups (the one rule:
    ``bpmos.access.ACTIONS["passport-restricted"]``)."""
    return access.allows(
        access.ACTIONS.get("passport-restricted"), getattr(user, "role", None)
    )


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: {field}: {message}",
        code="validation_error",
        details={field: [message]},
    )


def _body(request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise _invalid("body", "A JSON object.")
    return request.data


def _renamed(error: DomainError, rename) -> DomainError:
    """The same error with the field names of its details (and message) as the
    API spells them (the services name the model's fields)."""
    if not isinstance(error.details, dict):
        return error
    details, message = {}, error.message
    for key, value in error.details.items():
        new = rename(key)
        details[new] = value
        if new != key:
            message = message.replace(f"{key}:", f"{new}:")
    error.details, error.message = details, message
    error.args = (message,)
    return error


def _without_data_prefix(key: str) -> str:
    return key.removeprefix("data.")


def _events(passport: Passport) -> list[PassportEvent]:
    return list(selectors.event_list(passport=passport))


def granted_tiers(request, passport: Passport) -> tuple[attributes.Tier, ...]:
    """The tiers the caller of ``request`` reads of ``passport``: its role's
    (``attributes.reader_tiers``), and legitimate interest as well for the
    holder of a valid access grant (its token in ``X-Passport-Grant``: 403
    ``grant_invalid`` unless valid for this passport; every use audited). A
    caller whose role reads that tier already is not asked for a grant."""
    tiers = attributes.reader_tiers(request.user)
    token = request.META.get(grants.HEADER, "").strip()
    if token and attributes.Tier.LEGITIMATE_INTEREST not in tiers:
        grants.grant_use(token=token, passport=passport)
        tiers = (*tiers, attributes.Tier.LEGITIMATE_INTEREST)
    return tiers


def _detail(passport: Passport, user, request=None) -> dict[str, Any]:
    restricted = may_see_restricted(user)
    if not restricted and request is not None:
        restricted = attributes.Tier.LEGITIMATE_INTEREST in granted_tiers(
            request, passport
        )
    return s.passport_detail(
        passport,
        restricted=restricted,
        events=_events(passport),
        parent=selectors.parent_get(passport=passport),
        component_count=selectors.component_count(passport=passport),
        telemetry=telemetry.telemetry_summary(passport) if restricted else None,
    )


def _summary(passport_id: int) -> dict[str, Any]:
    passport = selectors.passport_get(passport_id=passport_id)
    return dict(s.PassportSummarySerializer(passport).data)


# --- list, register, registry ---------------------------------------------------------


class _PassportListBase(generics.ListAPIView):
    filterset_class = PassportFilterSet
    filter_backends = [FilterBackend, SearchFilter]
    search_fields = ["serial", "bpan", "barcode", "model"]


@extend_schema(tags=_TAGS)
class PassportListView(ValuesListMixin, _PassportListBase):
    """Passports, newest manufactured first. Filters: ``kind``, ``state``,
    ``custodianKind`` (labels or stored values, any case), ``lot``, ``model``,
    ``onHold``; ``search`` over serial, BPAN, barcode, model; ``ordering``.

    POST registers a battery (shop floor): its passport and its
    ``manufactured`` event; 201 with the detail. 400 naming the field, 409
    ``duplicate_identifier`` when a serial, barcode, RFID or BPAN is taken."""

    serializer_class = s.PassportSummarySerializer
    # The page as values() rows, printed as the serializer prints them
    # (bpmos.listrows).
    values_fields = s.PASSPORT_ROW_FIELDS
    values_times = s.PASSPORT_ROW_TIMES
    values_times_whole_seconds = True
    kept_count = selectors.PASSPORTS_COUNTED
    compiled_pages = True

    def get_queryset(self):
        return selectors.passport_list()

    def shape_rows(self, rows):
        return s.passport_rows(rows)

    @extend_schema(
        request=s.PassportRegisterSerializer,
        responses={201: s.PassportDetailSchema},
    )
    def post(self, request):
        body = s.PassportRegisterInSerializer(data=_body(request))
        body.is_valid(raise_exception=True)
        try:
            passport = services.passport_register(
                data=body.validated_data, actor=request.user
            )
        except DomainError as error:
            raise _renamed(error, s.camel) from None
        return Response(
            _detail(selectors.passport_get(passport_id=passport.pk), request.user),
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["registry"])
class RegistryListView(_PassportListBase):
    """The registry (control UI S9, trace): every passport with its identity,
    state, custodian and last ledger event; the list's filters, search and
    ordering."""

    serializer_class = s.RegistryEntrySerializer

    def get_queryset(self):
        return selectors.registry_list()


@extend_schema(
    tags=_TAGS,
    parameters=[
        OpenApiParameter(
            "identifier",
            OpenApiTypes.STR,
            required=True,
            description="UUID, BPAN, serial, barcode or RFID tag.",
            pattern=NOT_BLANK_PATTERN,
            allow_blank=False,
        )
    ],
)
class PassportLookupView(BpmosAPIView):
    """Which passport an identifier names, and which of its identifiers matched."""

    @extend_schema(responses=s.LookupResultSerializer)
    def get(self, request):
        identifier = request.query_params.get("identifier", "")
        if not identifier.strip():
            raise _invalid("identifier", "This query parameter is required.")
        passport = selectors.resolve(identifier)
        return Response(
            {
                "matchedBy": selectors.matched_by(passport, identifier),
                "passport": s.PassportSummarySerializer(passport).data,
            }
        )


@extend_schema(
    tags=_TAGS,
    parameters=[
        OpenApiParameter(
            "identifier",
            OpenApiTypes.STR,
            description="One passport; without it every ledger is checked.",
        )
    ],
)
class PassportVerifyView(BpmosAPIView):
    """Walk the ledgers' hash chains and replay their lifecycle; name the first
    altered, removed or inserted event, or a projection that disagrees."""

    @extend_schema(responses=s.LedgerVerifyResultSerializer)
    def get(self, request):
        identifier = request.query_params.get("identifier", "")
        ids = None
        if identifier.strip():
            ids = [selectors.resolve(identifier).pk]
        return Response(ledger.verify(passport_ids=ids).as_dict())


@extend_schema(tags=_TAGS)
class PassportEventsBatchView(BpmosAPIView):
    """Record many lifecycle events in one request and one transaction (a
    pallet warehoused, a shipment dispatched): ``{events: [{passport, kind,
    data?, expectedVersion?, occurredAt?}, ...]}``, at most 1,000, in order.

    All or nothing: the same rows, hashes, audit records and live events as
    posting each to ``/passports/{identifier}/events`` in turn, or nothing at
    all. ``passport`` is any identifier the single route accepts. Who may
    record which kind is the single route's rule, checked for every kind in
    the batch. 400 names the field as ``events[i].<field>``; a missing
    passport (404) or a refused event (409: ``illegal_transition``,
    ``version_conflict``, …) names the event as ``details.index``."""

    @extend_schema(
        request=s.EventBatchSerializer,
        responses={201: s.EventBatchRecordedSerializer},
    )
    def post(self, request):
        body = _body(request)
        written = services.passport_events_record_batch(
            events=body.get("events"),
            actor=request.user,
            may_record=lambda kind: access.require_action(
                f"passport-event.{kind}", request.user
            ),
        )
        return Response(
            {
                "count": len(written),
                "events": [
                    {
                        "passportId": str(event.passport.uuid),
                        "serial": event.passport.serial,
                        **s.LedgerEventSerializer(event).data,
                    }
                    # a batch holds no signed step: nothing to look up
                    for event in s.attach_signatures_none(written)
                ],
            },
            status=status.HTTP_201_CREATED,
        )


# --- one passport ---------------------------------------------------------------------


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportDetailView(BpmosAPIView):
    """A passport's trace: identity and the EU attribute groups, state, hold,
    custodian and version, genealogy summary, telemetry summary and the whole
    ledger in order. Supervisors, plant heads, auditors and admins also get the
    restricted groups (``materials``, ``stateOfHealth``, barcode and RFID) and
    the telemetry, as does a signed-in caller presenting a valid access
    grant for this passport (``X-Passport-Grant``; 403 ``grant_invalid``
    otherwise; every use audited); ``restricted`` says which answer this is."""

    @extend_schema(responses=s.PassportDetailSchema)
    def get(self, request, identifier: str):
        return Response(_detail(selectors.resolve(identifier), request.user, request))


@extend_schema(tags=["registry"], parameters=[_IDENTIFIER])
class RegistryDetailView(PassportDetailView):
    """The registry's trace of one passport (same as the passport detail)."""


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportPublicView(BpmosAPIView):
    """The public passport (no token; the QR code's target): identity and the
    public attribute groups, and the history as event kinds and times. Answers
    to the UUID, BPAN or serial only."""

    authentication_classes: list = []
    throttle_classes = [PublicPassportThrottle]

    @extend_schema(responses=s.PassportPublicSchema, auth=[])
    def get(self, request, identifier: str):
        passport = _public_passport(identifier)
        return Response(s.passport_public(passport, events=_events(passport)))


# The body of a second-life change: its own fields and any registration field.
SECOND_LIFE_FIELDS = frozenset(
    {"status", "operator", "note", "expectedVersion", "occurredAt"}
) | (frozenset(s.REGISTER_FIELDS) - {"kind", "manufacturer", "manufacturedAt"})


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportSecondLifeView(BpmosAPIView):
    """Repurpose, prepare for re-use or remanufacture a battery: ``{status:
    Repurposed|Reused|Remanufactured, serial, operator, site?, note?,
    expectedVersion?, occurredAt?, …registration fields to override}`` → 201
    ``{passport, predecessor, events}``: the new passport (linked back to this
    one), this one (now Superseded) and the two ledger events. Only from In
    Service or End of Life, not on hold (409); repurposed and remanufactured
    packs need a new BPAN (``bpan`` or ``manufacturerCode`` + ``plantCode``),
    a re-used pack keeps its own."""

    @extend_schema(
        request=s.SecondLifeSerializer, responses={201: s.SecondLifeResultSerializer}
    )
    def post(self, request, identifier: str):
        body = _body(request)
        unknown = sorted(set(body) - SECOND_LIFE_FIELDS)
        if unknown:
            raise _invalid(unknown[0], "Unknown field.")
        passport = selectors.resolve(identifier)
        try:
            new, old_event, genesis = secondlife.passport_second_life(
                passport_id=passport.pk,
                data={s.snake(key): value for key, value in body.items()},
                actor=request.user,
            )
        except DomainError as exc:
            raise _renamed(exc, s.camel) from exc
        return Response(
            {
                "passport": _summary(new.pk),
                "predecessor": _summary(passport.pk),
                "events": s.LedgerEventSerializer([old_event, genesis], many=True).data,
            },
            status=status.HTTP_201_CREATED,
        )


def _public_passport(identifier: str) -> Passport:
    """The passport a public route names: by UUID, BPAN or serial only."""
    passport = selectors.resolve(identifier)
    if selectors.matched_by(passport, identifier) not in PUBLIC_IDENTIFIERS:
        raise NotFound("No passport has this identifier.")
    return passport


@extend_schema(
    tags=_TAGS,
    parameters=[
        _IDENTIFIER,
        OpenApiParameter(
            "symbol",
            OpenApiTypes.STR,
            OpenApiParameter.PATH,
            enum=list(qr.SYMBOLS),
            description="digital-link: the GS1 Digital Link URI; bpan: the "
            "Battery Pack Aadhaar QR code (BPAN, static data, link).",
        ),
        OpenApiParameter(
            "image",
            OpenApiTypes.STR,
            OpenApiParameter.QUERY,
            enum=list(qr.FORMATS),
            default="svg",
            description="Image format (``format`` is DRF's own parameter).",
        ),
    ],
)
class PassportQrView(BpmosAPIView):
    """A passport's QR code as an image (no token, as the public passport):
    its GS1 Digital Link URI or its BPAN QR code. 404 when the passport has
    no GTIN (no Digital Link) or no BPAN; 400 for another ``image``."""

    authentication_classes: list = []
    throttle_classes = [PublicPassportThrottle]

    @extend_schema(
        auth=[],
        responses={
            (200, "image/svg+xml"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, identifier: str, symbol: str):
        fmt = request.query_params.get("image", "svg")
        if fmt not in qr.FORMATS:
            raise _invalid("image", f"One of {', '.join(qr.FORMATS)}.")
        passport = _public_passport(identifier)
        image = qr.draw(qr.content(request, passport, symbol), fmt)
        response = HttpResponse(image, content_type=qr.FORMATS[fmt])
        response["Cache-Control"] = "public, max-age=3600"
        return response


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportLedgerView(generics.ListAPIView):
    """A passport's ledger, oldest first (paginated): every event with its
    actor, data and hashes."""

    serializer_class = s.LedgerEventSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.event_list(
            passport=selectors.resolve(self.kwargs["identifier"])
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else s.attach_signatures(page)


@extend_schema(
    tags=_TAGS,
    parameters=[
        _IDENTIFIER,
        OpenApiParameter(
            "version",
            {"type": "integer", "minimum": 1, "maximum": 2_147_483_647},
            required=True,
            description="The event's version (1 for the first).",
        ),
    ],
)
class PassportLedgerProofView(BpmosAPIView):
    """The proof that a ledger event is included in a published checkpoint:
    the event's hash, the chain from it to the head the first checkpoint
    covering it holds, that head's Merkle audit path and the checkpoint's
    root. ``passports.merkle.verify_proof`` checks it offline. 404 when the
    passport has no such event, 409 ``not_checkpointed`` when no checkpoint
    covers it yet."""

    @extend_schema(responses=s.LedgerProofSerializer)
    def get(self, request, identifier: str):
        raw = request.query_params.get("version", "")
        if not raw.isascii() or not raw.isdecimal() or not 1 <= int(raw) < 2**31:
            raise _invalid("version", "A whole number from 1.")
        passport = selectors.resolve(identifier)
        return Response(checkpoints.event_proof(passport=passport, version=int(raw)))


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportEventsView(BpmosAPIView):
    """Record a lifecycle event: ``{kind, data, expectedVersion?, occurredAt?}``.

    Who may record which kind is ``bpmos.access.ACTIONS["passport-event.<kind>"]``:
    QA, warehousing, reservations and service on the floor; holds, dispatch,
    delivery, custody, end of life and recycling by supervisors. 409 for an
    illegal move (``illegal_transition``, ``on_hold``, ``custody_violation``,
    …) or ``version_conflict``; nothing is written then."""

    @extend_schema(
        request=s.EventRecordSerializer, responses={201: s.EventRecordedSerializer}
    )
    def post(self, request, identifier: str):
        body = _body(request)
        kind = body.get("kind")
        if kind in services.RECORDABLE_KINDS:
            access.require_action(f"passport-event.{kind}", request.user)
        passport = selectors.resolve(identifier)
        event = services.passport_event_record(
            passport_id=passport.pk,
            kind=kind,
            data=body.get("data"),
            expected_version=body.get("expectedVersion"),
            occurred_at=body.get("occurredAt"),
            password=body.get("password"),
            actor=request.user,
        )
        return Response(
            {
                "event": s.LedgerEventSerializer(event).data,
                "passport": _summary(passport.pk),
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportCustodyView(BpmosAPIView):
    """Transfer custody: ``{to: {kind, name}, reference?, expectedVersion?}``
    (a ``custody_transferred`` event). The chain allows customer → service,
    service → customer, customer/service → recycler at end of life,
    manufacturer → recycler at end of life, logistics → logistics; dispatch
    and delivery carry the other moves. 409 ``custody_violation`` otherwise."""

    @extend_schema(
        request=s.CustodyTransferSerializer, responses={201: s.EventRecordedSerializer}
    )
    def post(self, request, identifier: str):
        body = _body(request)
        to = body.get("to")
        if isinstance(to, dict) and isinstance(to.get("kind"), str):
            to = {**to, "kind": enum_value(CustodianKind, to["kind"]) or to["kind"]}
        passport = selectors.resolve(identifier)
        try:
            event = services.passport_event_record(
                passport_id=passport.pk,
                kind=EventKind.CUSTODY_TRANSFERRED,
                data={"to": to, "reference": body.get("reference")},
                expected_version=body.get("expectedVersion"),
                actor=request.user,
            )
        except InvalidInput as error:
            raise _renamed(error, _without_data_prefix) from None
        return Response(
            {
                "event": s.LedgerEventSerializer(event).data,
                "passport": _summary(passport.pk),
            },
            status=status.HTTP_201_CREATED,
        )


def _genealogy(passport: Passport) -> dict[str, Any]:
    def node(entry: dict) -> dict[str, Any]:
        return {
            **s.PassportRefSerializer(entry["passport"]).data,
            "components": [node(child) for child in entry["components"]],
        }

    return {
        "passport": s.PassportRefSerializer(passport).data,
        "ancestors": s.PassportRefSerializer(
            selectors.ancestors(passport), many=True
        ).data,
        "components": [node(entry) for entry in selectors.components_tree(passport)],
    }


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportGenealogyView(BpmosAPIView):
    """Where a battery sits: its ancestors (module, then pack: nearest first)
    and what it is made of (modules, then their cells)."""

    @extend_schema(responses=s.GenealogySerializer)
    def get(self, request, identifier: str):
        return Response(_genealogy(selectors.resolve(identifier)))


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportConformityView(BpmosAPIView):
    """Which conformity rules (``passports.conformity``, the rules behind the
    Aadhaar Ready %) this passport fails: ``ready`` when none. The detail
    carries the same as ``conformity``."""

    @extend_schema(responses=s.ConformitySerializer)
    def get(self, request, identifier: str):
        passport = selectors.resolve(identifier)
        result = conformity.passport_conformity(passport)
        return self.respond(s.ConformitySerializer, result.as_dict())


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportAttributesView(BpmosAPIView):
    """The EU attribute set (Battery Pass data model v1.2,
    ``passports.attributes``): each attribute with its group, unit, tier,
    source and value, dynamic ones with ``lastUpdate``. Only the tiers the
    caller may read are included: public for anyone (no token; then only the
    UUID, BPAN or serial answer, as the public passport), legitimate interest
    for supervisors, plant heads, auditors and admins, authority for
    auditors, and for the holder of an access grant an admin issued (its token
    in the ``X-Passport-Grant`` header; 403 ``grant_invalid`` when it is not
    valid for this passport; every use audited)."""

    throttle_classes = [PublicPassportThrottle]

    @extend_schema(responses=s.PassportAttributesSerializer, auth=[])
    def get(self, request, identifier: str):
        passport = selectors.resolve(identifier)
        tiers = attributes.reader_tiers(request.user)
        if attributes.Tier.LEGITIMATE_INTEREST not in tiers and (
            selectors.matched_by(passport, identifier) not in PUBLIC_IDENTIFIERS
        ):
            raise NotFound("No passport has this identifier.")
        # An outside party's access grant (403 unless valid; audited).
        tiers = granted_tiers(request, passport)
        rows = selectors.passport_attributes(passport=passport, tiers=tiers)
        return Response(
            {
                "id": str(passport.uuid),
                "serial": passport.serial,
                "tiers": [str(tier) for tier in tiers],
                "attributes": s.attribute_rows(rows),
            }
        )


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportCompletenessView(BpmosAPIView):
    """The share of the mandatory attributes of the passport's category it has
    present and valid, and which it misses (keys, never values: every signed-in
    reader may see it). The compliance score counts with the same validator."""

    @extend_schema(responses=s.CompletenessSerializer)
    def get(self, request, identifier: str):
        passport = selectors.resolve(identifier)
        result = attributes.completeness(attributes.values_of(passport))
        return self.respond(s.CompletenessSerializer, result.as_dict())


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportComponentsView(BpmosAPIView):
    """Assemble components into this passport: ``{components: [identifier, …]}``
    (cells into a module, modules into a pack). Each component's ledger gets
    ``assembled``; all or nothing. 201 with the genealogy."""

    @extend_schema(
        request=s.ComponentsSerializer, responses={201: s.GenealogySerializer}
    )
    def post(self, request, identifier: str):
        body = _body(request)
        names = body.get("components")
        if not isinstance(names, list) or not names:
            raise _invalid("components", "A non-empty list of identifiers.")
        if not all(isinstance(name, str) for name in names):
            raise _invalid("components", "Identifiers are strings.")
        parent = selectors.resolve(identifier)
        ids = []
        for index, name in enumerate(names):
            try:
                ids.append(selectors.resolve(name).pk)
            except DomainError as error:
                error.details = {
                    **(error.details or {}),
                    "components": {str(index): [f"{name}: {error.message}"]},
                }
                raise
        services.passport_assemble(
            parent_id=parent.pk, component_ids=ids, actor=request.user
        )
        return Response(_genealogy(parent), status=status.HTTP_201_CREATED)


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportTelemetryView(BpmosAPIView):
    """A pack's telemetry. GET: latest values and daily trends of the last
    ``days`` days (1-365, default 30). POST (a BMS gateway): one sample or a
    list of up to 10,000 ``{ts, sohPercent?, socPercent?, temperatureC?,
    voltageV?, currentA?}``; any bad row answers 400 naming its index and field
    and nothing is stored; re-sent samples (same ts) count as duplicates. 201
    when something was stored, 200 when all were duplicates."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": 365},
                description="1-365 (30).",
            )
        ],
        responses=s.TelemetrySummarySerializer,
    )
    def get(self, request, identifier: str):
        raw = request.query_params.get("days", str(telemetry.TREND_DAYS))
        if not raw.isdecimal() or not 1 <= int(raw) <= telemetry.MAX_TREND_DAYS:
            raise _invalid("days", f"A whole number, 1 to {telemetry.MAX_TREND_DAYS}.")
        passport = selectors.resolve(identifier)
        summary = telemetry.telemetry_summary(passport, days=int(raw))
        return Response(s.TelemetrySummarySerializer(summary).data)

    @extend_schema(
        # Schema only: the service refuses an empty batch (400).
        request=s.TelemetryReadingInSerializer(many=True, min_length=1),
        responses={
            201: s.TelemetryIngestResultSerializer,
            200: s.TelemetryIngestResultSerializer,
        },
    )
    def post(self, request, identifier: str):
        rows = request.data
        if isinstance(rows, dict):
            rows = rows.get("readings", [rows])
        passport = selectors.resolve(identifier)
        result = telemetry.telemetry_ingest(
            passport_id=passport.pk, rows=rows, actor=request.user
        )
        passport = selectors.passport_get(passport_id=passport.pk)
        latest = {
            "sohPercent": passport.soh_percent,
            "socPercent": passport.soc_percent,
            "temperatureC": passport.temperature_c,
            "at": passport.telemetry_at,
        }
        body = {**result, "latest": s.TelemetryLatestSerializer(latest).data}
        code = status.HTTP_201_CREATED if result["accepted"] else status.HTTP_200_OK
        return Response(body, status=code)


# --- BPAN -----------------------------------------------------------------------------


@extend_schema(tags=_TAGS)
class BpanValidateView(BpmosAPIView):
    """Check a Battery Pack Aadhaar Number's format and check character
    (docs/passports.md): 200 with its parts, or 400 saying what is wrong."""

    @extend_schema(
        request=s.BpanValidateSerializer, responses=s.BpanValidResultSerializer
    )
    def post(self, request):
        value = _body(request).get("bpan")
        if not isinstance(value, str) or not value.strip():
            raise _invalid("bpan", "This field is required.")
        try:
            parsed = bpan_rules.parse(value)
        except bpan_rules.BPANError as error:
            raise _invalid("bpan", str(error)) from None
        return Response(
            {"valid": True, "bpan": parsed.value, "parts": parsed.as_dict()}
        )


# --- access grants for outside parties (passports.grants) -----------------------


def _grant_body(grant, token: str | None = None) -> dict[str, Any]:
    body = s.GrantSerializer(grant).data
    if token is not None:
        body["token"] = token
    return body


@extend_schema(tags=_TAGS)
class GrantListView(BpmosAPIView):
    """Access grants (admins): GET lists them, newest first; POST issues one to
    an outside party for one passport (``passport``: any identifier) or one
    customer's (``customer``: the custodian name), for ``days`` (1-90). The
    token is in the 201 answer only."""

    @extend_schema(responses=s.GrantSerializer(many=True))
    def get(self, request):
        return Response(s.GrantSerializer(grants.grant_list()[:500], many=True).data)

    @extend_schema(
        request=s.GrantIssueSerializer, responses={201: s.GrantIssuedSerializer}
    )
    def post(self, request):
        body = _body(request)
        unknown = sorted(set(body) - {"party", "passport", "customer", "days"})
        if unknown:
            raise _invalid(unknown[0], "Unknown field.")
        identifier = body.get("passport")
        passport = None
        if identifier is not None:
            if not isinstance(identifier, str) or not identifier.strip():
                raise _invalid("passport", "An identifier of the passport.")
            passport = selectors.resolve(identifier)
        grant, token = grants.grant_issue(
            party=body.get("party"),
            passport=passport,
            customer=body.get("customer", ""),
            days=body.get("days", 30),
            actor=request.user,
        )
        return Response(_grant_body(grant, token), status=status.HTTP_201_CREATED)


@extend_schema(tags=_TAGS)
class GrantRevokeView(BpmosAPIView):
    """Revoke an access grant now (admins); 409 ``grant_revoked`` if it was."""

    @extend_schema(request=None, responses=s.GrantSerializer)
    def post(self, request, grant_id: int):
        return Response(
            _grant_body(grants.grant_revoke(grant_id=grant_id, actor=request.user))
        )


# --- electronic signatures and export ---------------------------------------------


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportSignaturesView(BpmosAPIView):
    """Sign the head event of a passport's ledger (or ``version``, which must be
    the head): ``{meaning: "dispatch_release", password, version?}``. The
    signer re-enters their password (403 ``signature_invalid`` when wrong,
    audited; 429 ``signature_locked`` after too many); the signature is bound
    to the event's hash and shown in the trace. A site that sets
    ``BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE`` dispatches nothing without one
    (docs/passports.md, "Electronic signatures")."""

    @extend_schema(
        request=s.SignRequestSerializer, responses={201: s.EventRecordedSerializer}
    )
    def post(self, request, identifier: str):
        body = _body(request)
        unknown = sorted(set(body) - {"meaning", "password", "version"})
        if unknown:
            raise _invalid(unknown[0], "Unknown field.")
        passport = selectors.resolve(identifier)
        event, _signature = signatures.passport_event_sign(
            passport_id=passport.pk,
            meaning=body.get("meaning"),
            password=body.get("password"),
            version=body.get("version"),
            actor=request.user,
        )
        return Response(
            {
                "event": s.LedgerEventSerializer(s.attach_signatures([event])[0]).data,
                "passport": _summary(passport.pk),
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=_TAGS, parameters=[_IDENTIFIER])
class PassportExportView(BpmosAPIView):
    """A passport exported as JSON: ``?format=batterypass`` (the Battery Pass
    data model v1.2's submodels) or ``?format=aas`` (an Asset Administration
    Shell V3.0 environment: one shell and one submodel per Battery Pass
    submodel). The attributes are those of the tiers the caller may read, as
    ``…/attributes`` shows them (no token: the public tier, and only the UUID,
    BPAN or serial answer); an access grant's ``X-Passport-Grant`` opens the
    legitimate-interest tier. Every export is audited
    (``passport.exported``)."""

    throttle_classes = [PublicPassportThrottle]
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(export.FORMATS),
                required=True,
                description="batterypass or aas",
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
        auth=[],
    )
    def get(self, request, identifier: str):
        fmt = request.query_params.get("format", "")
        if fmt not in export.FORMATS:
            raise _invalid("format", f"One of {', '.join(export.FORMATS)}.")
        passport = selectors.resolve(identifier)
        tiers = attributes.reader_tiers(request.user)
        if attributes.Tier.LEGITIMATE_INTEREST not in tiers and (
            selectors.matched_by(passport, identifier) not in PUBLIC_IDENTIFIERS
        ):
            raise NotFound("No passport has this identifier.")
        # An outside party's access grant, as on …/attributes.
        tiers = granted_tiers(request, passport)
        body = export.passport_export(
            passport=passport, tiers=tiers, fmt=fmt, actor=request.user
        )
        return Response(body)
