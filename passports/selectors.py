"""Reads of passports: identity resolution and genealogy."""

from __future__ import annotations

import contextlib
import uuid as uuid_module

from django.db.models import Q, QuerySet

from bpmos.errors import Conflict, NotFound
from passports import bpan as bpan_rules
from passports.models import Passport

# The identifiers a battery can be found by, in the order they are tried.
IDENTIFIERS = ("uuid", "bpan", "serial", "barcode", "rfid")


def resolve(identifier: str, queryset: QuerySet[Passport] | None = None) -> Passport:
    """The passport an identifier names: its UUID, BPAN, serial, barcode or RFID.

    404 when none has it; 409 ``ambiguous_identifier`` when the same string is
    one passport's serial and another's barcode (say), naming both.
    """
    qs = queryset if queryset is not None else Passport.objects.all()
    value = (identifier or "").strip()
    if not value or len(value) > 64:
        raise NotFound("No passport has this identifier.")
    condition = Q(serial=value) | Q(barcode=value.upper()) | Q(rfid=value.upper())
    with contextlib.suppress(ValueError):
        condition |= Q(uuid=uuid_module.UUID(value))
    compact = bpan_rules.compact(value)
    if len(compact) == bpan_rules.LENGTH:
        condition |= Q(bpan=compact)
    found = list(qs.filter(condition)[:3])
    if not found:
        raise NotFound("No passport has this identifier.")
    if len(found) > 1:
        raise Conflict(
            "More than one passport answers to this identifier; use its UUID.",
            code="ambiguous_identifier",
            details={"matches": [str(p.uuid) for p in found]},
        )
    return found[0]


def matched_by(passport: Passport, identifier: str) -> str:
    """Which identifier of ``passport`` the string matched (for the lookup reply)."""
    value = identifier.strip()
    with contextlib.suppress(ValueError):
        if uuid_module.UUID(value) == passport.uuid:  # any form resolve accepts
            return "uuid"
    if passport.bpan and passport.bpan == bpan_rules.compact(value):
        return "bpan"
    if passport.serial == value:
        return "serial"
    if passport.barcode and passport.barcode == value.upper():
        return "barcode"
    return "rfid"


def ancestors(passport: Passport) -> list[Passport]:
    """The module a cell is in, then the pack (nearest first)."""
    chain, current = [], passport
    while current.parent_id is not None and len(chain) < 3:
        current = Passport.objects.get(pk=current.parent_id)
        chain.append(current)
    return chain


def components_tree(passport: Passport) -> list[dict]:
    """What a pack or module is made of, as a tree (two queries at most)."""
    level1 = list(Passport.objects.filter(parent=passport).order_by("serial"))
    level2: dict[int, list[Passport]] = {}
    if level1:
        for child in Passport.objects.filter(parent__in=level1).order_by("serial"):
            level2.setdefault(child.parent_id, []).append(child)
    return [
        {
            "passport": child,
            "components": [
                {"passport": g, "components": []} for g in level2.get(child.pk, [])
            ],
        }
        for child in level1
    ]
