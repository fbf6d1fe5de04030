"""Shapes of the compliance score (camelCase, docs/compliance.md)."""

from rest_framework import serializers

from bpmos.fields import utc_datetime
from passports.models import Kind


class ScoreKindSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text=f"{', '.join(Kind.labels)} (a kind the model does not know, "
        "written straight to the database, is shown as stored)."
    )
    total = serializers.IntegerField(help_text="Passports of this kind.")
    ready = serializers.IntegerField(help_text="Of them, failing no rule.")
    percent = serializers.FloatField(
        allow_null=True, help_text="ready / total * 100, one decimal."
    )


class ScoreRuleSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text='Stable rule id, e.g. "bpan.check".')
    message = serializers.CharField()
    count = serializers.IntegerField(help_text="Passports failing this rule.")


class ComplianceScoreSerializer(serializers.Serializer):
    """The newest snapshot of the Aadhaar Ready % (computed by Celery beat)."""

    aadhaarReadyPercent = serializers.FloatField(
        allow_null=True,
        help_text="ready / total * 100, one decimal; null without passports.",
    )
    total = serializers.IntegerField(help_text="Passports checked.")
    ready = serializers.IntegerField(help_text="Passports failing no rule.")
    computedAt = utc_datetime(help_text="When the snapshot was computed.")
    durationMs = serializers.IntegerField(help_text="How long the computation took.")
    perKind = ScoreKindSerializer(
        many=True, help_text="Cell, Module, Pack: the kinds that have passports."
    )
    topFailingRules = ScoreRuleSerializer(
        many=True,
        help_text="Every rule failed by at least one passport, most failed first.",
    )
