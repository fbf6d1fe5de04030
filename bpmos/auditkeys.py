"""The audit keyring: the key that signs, and the retired keys that still verify.

One secret signs the audit chain, every passport ledger and the audit anchors
(HMAC-SHA-256). So that it can be rotated without orphaning what it signed,
each audit record, ledger event and anchor stores the id of the key that
signed it, and verification looks each one's key up by that id:

* ``BPMOS_AUDIT_KEY`` is the *current* key: it signs everything new. Its id is
  ``BPMOS_AUDIT_KEY_ID`` when set, otherwise its fingerprint: the first 8 hex
  digits of the SHA-256 of the key (``printf %s "$KEY" | sha256sum | cut -c1-8``).
  The embedded default's generated key (``bpmos/localkeys.py``) gets its
  fingerprint like any other.
* ``BPMOS_AUDIT_RETIRED_KEYS`` lists the *retired* keys (comma-separated): they
  sign nothing, they verify what they signed. An entry is ``KEY`` (its id is its
  fingerprint) or ``ID:KEY`` (for a key that had ``BPMOS_AUDIT_KEY_ID`` set while
  it was current). A key with a ``:`` in it must be given as ``ID:KEY``.

A record whose key id is in neither is reported *unverifiable* by the
verifications (never passed, never a crash). Ids are 1 to 16 characters of
``A-Z a-z 0-9 . _ -``; two different keys with one id refuse to start.
The rotation procedure is in docs/security.md (operational checklist).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from django.core.exceptions import ImproperlyConfigured

KEY_ID_MAX_LENGTH = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,16}$")


def key_id_of(key: str) -> str:
    """A key's fingerprint: the first 8 hex digits of its SHA-256.

    32 bits of a hash of a random key of 50+ characters tell nothing about
    the key; a weak key is exposed by the signed records themselves anyway.
    """
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Keyring:
    """The current key's id and every known key (current and retired) by id."""

    current_id: str
    keys: Mapping[str, bytes]

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current_id]

    def key(self, key_id: str | None) -> bytes | None:
        """The key named ``key_id``, or None when the keyring does not hold it."""
        return self.keys.get(key_id or "")

    @property
    def retired_ids(self) -> list[str]:
        return [key_id for key_id in self.keys if key_id != self.current_id]


def _check_id(key_id: str, where: str) -> str:
    if not _KEY_ID.match(key_id):
        raise ImproperlyConfigured(
            f"{where}: an audit key id is 1 to {KEY_ID_MAX_LENGTH} characters of "
            f"A-Z a-z 0-9 . _ -, not {key_id!r}"
        )
    return key_id


def _retired_entry(entry: str, index: int) -> tuple[str, str]:
    where = f"BPMOS_AUDIT_RETIRED_KEYS entry {index + 1}"
    head, colon, rest = entry.partition(":")
    if colon and rest and _KEY_ID.match(head):
        return head, rest
    if not entry:
        raise ImproperlyConfigured(f"{where} is empty")
    return key_id_of(entry), entry


def build(current: str, current_id: str = "", retired: Iterable[str] = ()) -> Keyring:
    """The keyring the settings describe; ``ImproperlyConfigured`` if they
    describe none (no current key, a malformed id, one id for two keys)."""
    if not current:
        raise ImproperlyConfigured("BPMOS_AUDIT_KEY is empty")
    current_id = _check_id(current_id, "BPMOS_AUDIT_KEY_ID") if current_id else ""
    keys: dict[str, bytes] = {current_id or key_id_of(current): current.encode()}
    for index, entry in enumerate(retired):
        key_id, key = _retired_entry(entry.strip(), index)
        known = keys.get(key_id)
        if known is not None and known != key.encode():
            raise ImproperlyConfigured(
                f"Audit key id {key_id!r} names two different keys "
                "(BPMOS_AUDIT_KEY, BPMOS_AUDIT_KEY_ID, BPMOS_AUDIT_RETIRED_KEYS)"
            )
        keys.setdefault(key_id, key.encode())
    first = next(iter(keys))
    return Keyring(current_id=first, keys=MappingProxyType(keys))


@lru_cache(maxsize=8)
def _cached(current: str, current_id: str, retired: tuple[str, ...]) -> Keyring:
    return build(current, current_id, retired)


def keyring() -> Keyring:
    """The keyring of the running settings (cached: nothing is parsed or hashed
    per append; a test that overrides the settings gets its own)."""
    from django.conf import settings

    return _cached(
        settings.BPMOS_AUDIT_KEY,
        settings.BPMOS_AUDIT_KEY_ID,
        tuple(settings.BPMOS_AUDIT_RETIRED_KEYS),
    )
