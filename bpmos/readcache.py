"""Computed read models kept in the cache, dropped by any write they depend on.

Plant screens poll the same few payloads (live status of every line, the
plant summary, running versus blocked operations) many times for every change
that alters them. A ``ReadModel`` keeps each computed payload in the shared
cache (Redis in production) beside a *generation*: a token that every write to
the tables behind the payload replaces. A read takes the payload and the
current generation in one round trip and serves the payload only when it was
computed in that generation and is within its own expiry; otherwise it
computes it, stores it and serves it. Nothing is ever updated in place, so a
payload can only be fresh or absent.

When the generation changes:

* on every ``post_save`` and ``post_delete`` of the models a read model names
  (admin edits, services' ORM writes, the OEE snapshots beat writes);
* where a service writes those tables in raw SQL, by its own ``changed()``
  call (a machine's status change in ``lines.services``).

``changed()`` replaces the generation at once and again when the transaction
commits. The second closes the race of a reader who computed from the
not-yet-committed state (it stored its payload under the first token); the
first serves the writer's own transaction and transactions that never commit
(tests), and costs nothing but a cache write if the transaction rolls back.

Expiry: a payload that depends on time as well as on rows (a snapshot is
served as "now" for a few minutes; a shift rolls over) is stored with the time
its computation says it stops being right, capped at ``MAX_AGE``.

When the cache is unreachable a read computes the payload (and logs); a write
whose generation change is lost leaves a payload at most ``MAX_AGE`` old.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

log = logging.getLogger(__name__)

# The longest any payload is kept, whatever its computation says.
MAX_AGE = 60.0  # seconds


class ReadModel:
    """A family of cached payloads (``name``) that the writes to ``models``
    ("app_label.Model") invalidate together."""

    def __init__(self, name: str, models: Iterable[str]):
        self.name = name
        self.models = tuple(models)
        self._generation_key = f"readmodel:{name}:generation"
        self._connected = False

    # --- reads ---------------------------------------------------------------------

    def get(
        self,
        key: str,
        compute: Callable[[], tuple[Any, datetime | None]],
        *,
        valid: Callable[[Any], bool] | None = None,
    ) -> Any:
        """The payload ``key`` of this read model. ``compute()`` returns the
        payload and the time it stops being right by the clock (None: only a
        write changes it). ``valid(payload)``, if given, may refuse a stored
        payload (one whose time window does not hold the clock's now)."""
        payload_key = f"readmodel:{self.name}:{key}"
        try:
            found = cache.get_many([self._generation_key, payload_key])
            generation = found.get(self._generation_key)
            if generation is None:
                cache.add(self._generation_key, uuid.uuid4().hex, None)
                generation = cache.get(self._generation_key)
        except Exception:  # the cache is down: serve the computed payload
            log.warning("read model %s: cache unreachable", self.name, exc_info=True)
            return compute()[0]
        stored = found.get(payload_key)
        if (
            stored is not None
            and stored[0] == generation
            and (valid is None or valid(stored[1]))
        ):
            return stored[1]
        payload, valid_until = compute()
        timeout = MAX_AGE
        if valid_until is not None:
            timeout = min(timeout, (valid_until - timezone.now()).total_seconds())
        if timeout > 0 and generation is not None:
            try:
                cache.set(payload_key, (generation, payload), timeout)
            except Exception:
                log.warning(
                    "read model %s: cache unreachable", self.name, exc_info=True
                )
        return payload

    # --- writes --------------------------------------------------------------------

    def invalidate(self) -> None:
        """Start a new generation: every payload stored so far is dropped."""
        try:
            cache.set(self._generation_key, uuid.uuid4().hex, None)
        except Exception:
            log.warning(
                "read model %s: cache unreachable; payloads may be served up to "
                "%.0f s old",
                self.name,
                MAX_AGE,
                exc_info=True,
            )

    def invalidate_key(self) -> str:
        """The cache key of this read model's generation (``invalidate_many``)."""
        return self._generation_key

    def changed(self) -> None:
        """A write the payloads depend on: invalidate now and at commit."""
        self.invalidate()
        if connection.in_atomic_block:
            transaction.on_commit(self.invalidate)

    def connect(self) -> None:
        """Invalidate on every save and delete of the named models (once)."""
        if self._connected:
            return
        for label in self.models:
            model = apps.get_model(label)
            for signal, signal_name in ((post_save, "save"), (post_delete, "delete")):
                signal.connect(
                    self._on_write,
                    sender=model,
                    weak=False,
                    dispatch_uid=f"readmodel:{self.name}:{label}:{signal_name}",
                )
        self._connected = True

    def _on_write(self, sender, **kwargs) -> None:
        self.changed()


def get_together(
    wanted: dict[str, tuple[ReadModel, str, Callable[[Any], bool] | None]],
    compute: Callable[[set[str]], dict[str, tuple[Any, datetime | None]]],
) -> dict[str, Any]:
    """Several payloads at once (name -> (read model, key, valid)), as
    ``ReadModel.get`` serves each, in one cache round trip for the reads and
    at most one per expiry for the stores: ``compute(names)`` computes those
    not served (every one of them together, e.g. in one statement,
    ``bpmos.totals``) and returns name -> (payload, valid until)."""
    payload_keys = {
        name: f"readmodel:{model.name}:{key}"
        for name, (model, key, _) in wanted.items()
    }
    generation_keys = {
        name: model.invalidate_key() for name, (model, _, _) in wanted.items()
    }
    try:
        found = cache.get_many([*generation_keys.values(), *payload_keys.values()])
        generations = {}
        for name, generation_key in generation_keys.items():
            generation = found.get(generation_key)
            if generation is None:
                cache.add(generation_key, uuid.uuid4().hex, None)
                generation = cache.get(generation_key)
            generations[name] = generation
    except Exception:  # the cache is down: serve the computed payloads
        log.warning("read models: cache unreachable", exc_info=True)
        return {name: payload for name, (payload, _) in compute(set(wanted)).items()}
    served, missing = {}, set()
    for name, (_model, _key, valid) in wanted.items():
        stored = found.get(payload_keys[name])
        if (
            stored is not None
            and stored[0] == generations[name]
            and (valid is None or valid(stored[1]))
        ):
            served[name] = stored[1]
        else:
            missing.add(name)
    if not missing:
        return served
    now = timezone.now()
    by_timeout: dict[float, dict[str, Any]] = {}
    for name, (payload, valid_until) in compute(missing).items():
        served[name] = payload
        timeout = MAX_AGE
        if valid_until is not None:
            timeout = min(timeout, (valid_until - now).total_seconds())
        if timeout > 0 and generations[name] is not None:
            entries = by_timeout.setdefault(timeout, {})
            entries[payload_keys[name]] = (generations[name], payload)
    try:
        for timeout, entries in by_timeout.items():
            cache.set_many(entries, timeout)
    except Exception:
        log.warning("read models: cache unreachable", exc_info=True)
    return served


def invalidate_many(models: Iterable[ReadModel]) -> None:
    """``invalidate()`` several read models in one cache round trip."""
    keys = {model.invalidate_key(): uuid.uuid4().hex for model in models}
    if not keys:
        return
    try:
        cache.set_many(keys, None)
    except Exception:
        log.warning(
            "read models: cache unreachable; payloads may be served up to %.0f s old",
            MAX_AGE,
            exc_info=True,
        )
