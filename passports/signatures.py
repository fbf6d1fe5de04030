"""Electronic signatures on the passport ledger (elog/signatures.py holds the
signature itself): which events are signed steps, the separate sign step that
binds a signature to an event already in the ledger, the signed dispatch
release a site may require, and the signatures shown in the trace.

* ``released`` (a held battery released back into the flow) is the **QA
  release**: recorded only with the releaser's re-entered password, and the
  signature (meaning ``qa_release``) is bound to the new event's hash in the
  same transaction.
* ``passport_event_sign`` signs an event already in the ledger (by default
  the head) with meaning ``dispatch_release``: the site's release for
  dispatch, given upstream of the dispatch desk, whose contract carries no
  signature.
* With ``BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE`` on, ``ledger.append``
  refuses ``dispatched`` (409 ``signed_release_required``) unless a dispatch
  release is bound to an event of the passport newer than its last hold or
  failed test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from bpmos.errors import Conflict, InvalidInput, NotFound
from elog import signatures as esign
from elog.models import ElectronicSignature, SignatureMeaning
from passports.models import EventKind, Passport, PassportEvent

RECORD_TYPE = "passports.passportevent"

# The event kinds that are signed steps, and what their signature means.
SIGNED_KINDS: dict[str, str] = {EventKind.RELEASED: SignatureMeaning.QA_RELEASE}

# What the separate sign step may sign an existing event for.
SIGN_STEP_MEANINGS = (SignatureMeaning.DISPATCH_RELEASE,)

# After one of these, an earlier dispatch release no longer counts.
_RELEASE_VOIDED_BY = (EventKind.HELD, EventKind.QA_FAILED)


def signed_record(
    *, event: PassportEvent, checked: esign.CheckedSigner
) -> ElectronicSignature:
    """Bind a checked signer's signature to ``event`` (caller's transaction)."""
    return esign.signature_record(
        checked=checked,
        record_type=RECORD_TYPE,
        record_id=event.pk,
        bound_hash=event.hash,
    )


def passport_event_sign(
    *, passport_id: int, meaning: Any, password: Any, version: Any, actor: Any
) -> tuple[PassportEvent, ElectronicSignature]:
    """Sign an event already in a passport's ledger (the head, or ``version``)
    with ``meaning``: the signature is bound to that event's hash. 400 for an
    unknown meaning or version, 403/429 for the password (elog.signatures),
    409 ``version_conflict`` when ``version`` is given and is not the head."""
    if meaning not in SIGN_STEP_MEANINGS:
        raise InvalidInput(
            "This step signs a dispatch release.",
            code="validation_error",
            details={"meaning": [f"One of {', '.join(SIGN_STEP_MEANINGS)}."]},
        )
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        raise InvalidInput(
            "The version to sign: 1 or more.",
            code="validation_error",
            details={"version": ["The head version you read: 1 or more."]},
        )
    checked = esign.signature_check(signer=actor, password=password, meaning=meaning)
    from passports import ledger  # the ledger imports this module

    with transaction.atomic():
        passport = ledger.lock_passport(passport_id)
        if version is not None and version != passport.version:
            raise Conflict(
                f"{passport} is at version {passport.version}, not {version}: "
                "re-read it and sign what is there now.",
                code="version_conflict",
                details={"expected": version, "actual": passport.version},
            )
        event = (
            PassportEvent.objects.filter(passport=passport, version=passport.version)
            .select_related("passport")
            .first()
        )
        if event is None:
            raise NotFound(f"{passport} has no ledger event to sign.")
        return event, signed_record(event=event, checked=checked)


def require_signed_release(passport: Passport) -> None:
    """409 ``signed_release_required`` when the site requires a signed dispatch
    release and ``passport`` has none since its last hold or failed test."""
    if not settings.BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE:
        return
    events = PassportEvent.objects.filter(passport_id=passport.pk)
    voided = (
        events.filter(kind__in=_RELEASE_VOIDED_BY)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
        or 0
    )
    signed = ElectronicSignature.objects.filter(
        meaning=SignatureMeaning.DISPATCH_RELEASE,
        record_type=RECORD_TYPE,
        bound_hash__in=events.filter(version__gt=voided).values("hash"),
    ).exists()
    if not signed:
        raise Conflict(
            f"{passport} has no signed dispatch release: a supervisor signs one "
            "(POST /api/passports/{identifier}/signatures) before it is dispatched.",
            code="signed_release_required",
            details={"passport": str(passport.uuid)},
        )


def signatures_by_event(events: Iterable[PassportEvent]) -> dict[int, list[dict]]:
    """The signatures of ``events`` as the trace shows them, by event id (one
    query)."""
    events = list(events)
    ids = [str(e.pk) for e in events]
    found: dict[int, list[dict]] = defaultdict(list)
    if not ids:
        return found
    hashes = {str(e.pk): e.hash for e in events}
    for sig in ElectronicSignature.objects.filter(
        record_type=RECORD_TYPE, record_id__in=ids
    ).order_by("id"):
        if hashes.get(sig.record_id) == sig.bound_hash:  # bound to this event
            found[int(sig.record_id)].append(esign.signature_as_dict(sig))
    return found
