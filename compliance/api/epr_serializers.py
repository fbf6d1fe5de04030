"""Shapes of the EPR API (camelCase, as every body under /api/compliance/).

The figures are built already shaped by ``compliance.epr``; these serializers
describe them for the OpenAPI schema and pass them through unchanged."""

from __future__ import annotations

from rest_framework import serializers

from bpmos.fields import utc_datetime
from compliance import categories
from compliance.api.fields import FinancialYearField
from compliance.models import ReturnEvent


class FinancialYearQuerySerializer(serializers.Serializer):
    fy = FinancialYearField(
        required=False,
        max_length=7,
        min_length=7,
        help_text='Financial year, April to March, written "2026-27" '
        "(default: the current one, in plant time).",
    )


class CategoryQuerySerializer(FinancialYearQuerySerializer):
    event = serializers.ChoiceField(
        choices=ReturnEvent.choices,
        required=False,
        help_text="Only the packs of this event (placed, collected, recycled).",
    )


class TallySerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Packs, with or without a mass.")
    massKg = serializers.FloatField(help_text="Sum of the packs' known masses.")
    missingMassCount = serializers.IntegerField(
        help_text="Packs counted whose passport has no mass (they add 0 kg)."
    )


class TargetSerializer(serializers.Serializer):
    percent = serializers.FloatField()
    citation = serializers.CharField(help_text="The rule's provision.")


class CollectionTargetSerializer(TargetSerializer):
    basisFinancialYear = serializers.CharField(
        help_text="The year whose placed-on-market mass the percentage applies to."
    )
    basisMassKg = serializers.FloatField()
    basisCount = serializers.IntegerField()
    basisMissingMassCount = serializers.IntegerField(
        help_text="Packs of the basis year without a mass (not in basisMassKg)."
    )
    obligationKg = serializers.FloatField()


class RecoveryTargetSerializer(TargetSerializer):
    obligationKg = serializers.FloatField(
        help_text="percent of the mass collected in the year."
    )


class CategoryFiguresSerializer(serializers.Serializer):
    category = serializers.ChoiceField(
        choices=categories.CATEGORIES,
        allow_null=True,
        help_text="null: packs whose model has no declaration.",
    )
    label = serializers.CharField()
    placedOnMarket = TallySerializer()
    collected = TallySerializer()
    recycled = TallySerializer()
    collectionTarget = CollectionTargetSerializer(allow_null=True)
    recoveryTarget = RecoveryTargetSerializer(allow_null=True)
    recycledContentTarget = TargetSerializer(allow_null=True)
    collectionGapKg = serializers.FloatField(
        allow_null=True, help_text="Obligation not yet met by the mass collected."
    )
    recoveryGapKg = serializers.FloatField(
        allow_null=True, help_text="Obligation not yet met by the mass recycled."
    )


class MissingMassSerializer(serializers.Serializer):
    serial = serializers.CharField()
    event = serializers.ChoiceField(choices=ReturnEvent.choices)
    model = serializers.CharField()


class PeriodSerializer(serializers.Serializer):
    financialYear = serializers.CharField(allow_null=True)
    periodStart = serializers.DateField()
    periodEnd = serializers.DateField(help_text="Inclusive.")
    timezone = serializers.CharField(help_text="The plant's: day boundaries.")


class EprFiguresSerializer(PeriodSerializer):
    categories = CategoryFiguresSerializer(many=True)
    missingMass = MissingMassSerializer(many=True)
    undeclaredModels = serializers.ListField(child=serializers.CharField())


class PackFactSerializer(serializers.Serializer):
    serial = serializers.CharField()
    bpan = serializers.CharField()
    model = serializers.CharField()
    event = serializers.ChoiceField(choices=ReturnEvent.choices)
    occurredAt = utc_datetime(source="occurred_at")
    massKg = serializers.FloatField(
        source="mass_kg", allow_null=True, help_text="null: no mass on the passport."
    )
    custodian = serializers.CharField(help_text="The pack's custodian now.")


class EprCategorySerializer(PeriodSerializer):
    figures = CategoryFiguresSerializer()
    count = serializers.IntegerField(help_text="Pack rows in all pages.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PackFactSerializer(many=True)


class DeclarationSerializer(serializers.Serializer):
    model = serializers.CharField()
    category = serializers.ChoiceField(choices=categories.CATEGORIES)
    label = serializers.CharField(source="get_category_display")
    note = serializers.CharField()
    updatedAt = utc_datetime(source="updated_at")


class UndeclaredModelSerializer(serializers.Serializer):
    model = serializers.CharField()
    kind = serializers.CharField()
    passports = serializers.IntegerField()
    countsInEpr = serializers.BooleanField(
        help_text="Packs count in EPR; cells and modules reach the market "
        "inside packs and do not."
    )


class CategoryChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()


class CategoriesSerializer(serializers.Serializer):
    categories = CategoryChoiceSerializer(many=True)
    declarations = DeclarationSerializer(many=True)
    undeclared = UndeclaredModelSerializer(many=True)
