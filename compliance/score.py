"""The compliance score, "Aadhaar Ready %" (the control-UI contract's Compliance
Score): the share of passports whose identity record passes every rule of
``passports.conformity`` that applies to its kind.

Celery beat (``compliance-score-refresh``, every 10 minutes) computes it into
a ``ScoreSnapshot``: one query streams the rules' fields of every passport
(``.values()`` in chunks, no model instances), each row is checked, and the
totals, the per-kind split and how many passports fail each rule are written
as one row. The API reads the newest row; it computes one itself only when
there is none yet (a fresh install), so a request never scans the passports
otherwise. Snapshots older than ``RETENTION`` are pruned by the next run (the
newest is always kept): a month of history for a trend.

Every passport counts, whatever its state (one recycled long ago still has an
identity record an auditor may ask for); ``perKind`` splits cells, modules and
packs.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from compliance.models import ScoreSnapshot
from passports import attributes, conformity
from passports.models import Kind

CHUNK_SIZE = 5000
RETENTION = timedelta(days=30)
_PERCENT = Decimal("0.1")


def percent(ready: int, total: int) -> float | None:
    """``ready`` of ``total`` in percent, one decimal (half up); None for none."""
    if total <= 0:
        return None
    value = Decimal(ready * 100) / Decimal(total)
    return float(value.quantize(_PERCENT, rounding=ROUND_HALF_UP))


def score_compute() -> ScoreSnapshot:
    """Check every passport against the rules and write one snapshot."""
    started = time.monotonic()
    computed_at = timezone.now()
    totals: Counter[str] = Counter()
    ready: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    # Completeness by the attribute registry's validator (the same checks the
    # rules above call): per category, and which attributes are missed most.
    by_category: Counter[str] = Counter()
    complete_by_category: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    percent_sum = Decimal(0)
    for row in conformity.values_stream(
        chunk_size=CHUNK_SIZE, extra_fields=attributes.STORED_FIELDS
    ):
        kind = row["kind"]
        totals[kind] += 1
        failed = conformity.failing(row)
        if failed:
            failures.update(rule.id for rule in failed)
        else:
            ready[kind] += 1
        found = attributes.completeness(row)
        category = found.category or "undeclared"
        by_category[category] += 1
        if found.complete:
            complete_by_category[category] += 1
        missing.update(attribute.key for attribute in found.missing)
        percent_sum += Decimal(str(found.percent or 0))
    # Cells, modules, packs in that order; only kinds that have passports.
    order = (*Kind.values, *sorted(set(totals) - set(Kind.values)))
    per_kind = {
        kind: {"total": totals[kind], "ready": ready[kind]}
        for kind in order
        if totals[kind]
    }
    failing_rules = [
        {
            "rule": rule_id,
            "message": conformity.RULES_BY_ID[rule_id].message,
            "count": count,
        }
        for rule_id, count in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    with transaction.atomic():
        snapshot = ScoreSnapshot.objects.create(
            computed_at=computed_at,
            total=sum(totals.values()),
            ready=sum(ready.values()),
            per_kind=per_kind,
            failing_rules=failing_rules,
            completeness={
                "complete": sum(complete_by_category.values()),
                "percentSum": str(percent_sum),
                "perCategory": {
                    category: {
                        "total": total,
                        "complete": complete_by_category[category],
                    }
                    for category, total in sorted(by_category.items())
                },
                "missing": [
                    {"key": key, "count": count}
                    for key, count in sorted(
                        missing.items(), key=lambda kv: (-kv[1], kv[0])
                    )
                ],
            },
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        ScoreSnapshot.objects.filter(computed_at__lt=computed_at - RETENTION).exclude(
            pk=snapshot.pk
        ).delete()
    return snapshot


def score_latest() -> ScoreSnapshot | None:
    """The newest snapshot, or None before the first computation."""
    return ScoreSnapshot.objects.order_by("-computed_at", "-id").first()


def score_current() -> ScoreSnapshot:
    """The newest snapshot; computed now when there is none yet."""
    return score_latest() or score_compute()


def _kind_label(kind: str) -> str:
    """The display label, as the passport API writes kinds ("Pack")."""
    return Kind(kind).label if kind in Kind.values else kind


def score_body(snapshot: ScoreSnapshot) -> dict:
    """The API's body for a snapshot (camelCase, docs/compliance.md)."""
    return {
        "aadhaarReadyPercent": percent(snapshot.ready, snapshot.total),
        "total": snapshot.total,
        "ready": snapshot.ready,
        "computedAt": snapshot.computed_at,
        "durationMs": snapshot.duration_ms,
        "perKind": [
            {
                "kind": _kind_label(kind),
                "total": counts.get("total", 0),
                "ready": counts.get("ready", 0),
                "percent": percent(counts.get("ready", 0), counts.get("total", 0)),
            }
            for kind, counts in snapshot.per_kind.items()
        ],
        "topFailingRules": [
            {"rule": item["rule"], "message": item["message"], "count": item["count"]}
            for item in snapshot.failing_rules
        ],
    }
