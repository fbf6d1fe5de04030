"""The walk of tests/test_text_lengths.py, shared with its probes
(tests/test_text_lengths_probes.py): every writable text of every documented
write, and the helpers that look for a text in the database."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from rest_framework import serializers

# Writable texts with no length, and why none is needed: none reaches a
# column as it was sent (a lookup reads it, a check compares it, or a JSON
# column keeps it). (serializer class, field; "[]" for a list's items.)
UNBOUNDED: dict[tuple[str, str], str] = {
    ("RefreshSerializer", "refresh"): "a token, verified, never stored",
    ("EventRecordSerializer", "password"): "checked against the hash, not stored",
    ("SignRequestSerializer", "password"): "checked against the hash, not stored",
    ("BpanValidateSerializer", "bpan"): "checked, not stored",
    ("EventBatchItemSerializer", "passport"): "an identifier looked up",
    ("GrantIssueSerializer", "passport"): "an identifier looked up",
    ("ComponentsSerializer", "components[]"): "identifiers looked up",
    # Registration and second life: a BPAN is checked whole (21 characters)
    # and its parts cut to their length by ``passports.bpan.issue``; a GTIN
    # is 8-14 digits (``passports.gs1``); the lists are JSON columns.
    **{
        (serializer, field): "checked by its own rule, or kept in a JSON column"
        for serializer in ("PassportRegisterSerializer", "SecondLifeSerializer")
        for field in (
            "bpan",
            "gtin",
            "manufacturerCode",
            "plantCode",
            "bpanSerial",
            "criticalRawMaterials[]",
            "hazardousSubstances[]",
            "sparePartSources[]",
        )
    },
}


def request_serializers():
    """(operation, serializer instance) for every documented write."""
    generator = SchemaGenerator()
    enumerator = EndpointEnumerator(generator.patterns, generator.urlconf)
    for path, _, method, callback in enumerator.get_api_endpoints():
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view = generator.create_view(callback, method)
        found = view.schema.get_request_serializer()
        # One serializer, or one per media type (the LIMS CSV's multipart form).
        for each in found.values() if isinstance(found, dict) else [found]:
            if isinstance(each, type) and issubclass(each, serializers.BaseSerializer):
                each = each()
            if isinstance(each, serializers.BaseSerializer):
                yield f"{method} {path}", each


def texts_of(serializer, where: str = ""):
    """(where, serializer, field name, field, column or None) for each
    writable text field of ``serializer``, its nested serializers and lists."""
    if isinstance(serializer, serializers.ListSerializer):
        yield from texts_of(serializer.child, where + "[]")
        return
    model = None
    if isinstance(serializer, serializers.ModelSerializer):
        model = serializer.Meta.model
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.BaseSerializer):
            yield from texts_of(field, f"{where}.{name}")
            continue
        key = name
        if isinstance(field, serializers.ListField | serializers.DictField):
            field, key = (
                field.child,
                name + ("[]" if isinstance(field, serializers.ListField) else "{}"),
            )
            if isinstance(field, serializers.BaseSerializer):
                yield from texts_of(field, f"{where}.{key}")
                continue
        if not isinstance(field, serializers.CharField):
            continue  # a choice, a number, a time: not free text
        column = None
        if model is not None and field.source and "." not in field.source:
            try:
                column = model._meta.get_field(field.source)
            except FieldDoesNotExist:  # a property or method as the source
                column = None
        yield where, serializer, key, field, column


def all_texts():
    for operation, serializer in request_serializers():
        for where, owner, key, field, column in texts_of(serializer):
            yield operation + where, owner, key, field, column


def columns_holding(text: str) -> set[str]:
    """Every text column of every model that holds ``text``."""
    from django.apps import apps

    found = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField):
                continue
            if model._default_manager.filter(
                **{f"{field.name}__contains": text}
            ).exists():
                found.add(f"{model._meta.label}.{field.name}")
    return found


def audit_count() -> int:
    from elog.models import AuditPending, AuditRecord

    return AuditRecord.objects.count() + AuditPending.objects.count()


def error_keys(details, prefix: str = ""):
    """Every key of a (nested) error ``details``, dotted."""
    if isinstance(details, dict):
        for key, value in details.items():
            yield f"{prefix}{key}"
            yield from error_keys(value, f"{prefix}{key}.")
    elif isinstance(details, list):
        for index, value in enumerate(details):
            yield from error_keys(value, f"{prefix}{index}.")


EMAIL_DOMAIN = "@" + ".".join(["d" * 63] * 3) + ".in"  # 196 characters


# A text with a form of its own, of the length asked for.
FORMED = {
    "email": lambda n: "e" * (n - len(EMAIL_DOMAIN)) + EMAIL_DOMAIN,
    "endpoint": lambda n: "opc.tcp://h:4840/" + "q" * (n - len("opc.tcp://h:4840/")),
    "node_id": lambda n: "ns=2;s=" + "q" * (n - len("ns=2;s=")),
}


def text_of(field: str, length: int) -> str:
    return FORMED.get(field, "q".__mul__)(length)


# Registration's texts that are links (``passports.attributes.is_url``).
LINKS = {
    "lifetimeReferenceTest",
    "carbonFootprintStudy",
    "dismantlingInformation",
    "safetyMeasures",
    "endOfLifeInformation",
    "declarationOfConformity",
    "testReport",
    "dueDiligenceReport",
    "thirdPartyAssurances",
}


def bounded_texts(serializer_class) -> list[tuple[str, int]]:
    """(field, max_length) of every bounded text ``serializer_class`` takes."""
    return [
        (key, field.max_length)
        for _, _, key, field, _ in texts_of(serializer_class())
        if field.max_length is not None
    ]


def text_for(field: str, length: int) -> str:
    if field in LINKS:  # an http(s) address of that length
        return "https://e.in/" + "q" * (length - len("https://e.in/"))
    return "Q" * length


def register_texts():
    from passports.api.serializers import PassportRegisterSerializer

    return bounded_texts(PassportRegisterSerializer)


def second_life_texts():
    from passports.api.serializers import SecondLifeSerializer

    return bounded_texts(SecondLifeSerializer)
