"""Check a whole ingest batch in plain Python before ``bpmos.bulk`` stores it:
the one validation loop of every high-volume ingest (machine readings, battery
telemetry).

One bad row and nothing is stored: the 400 names every bad row (up to
``MAX_REPORTED_ERRORS``) by its index and field in ``details.rows``. A row
repeated in the batch with the same content is stored once; with other content
it is an error. Each ingest brings its own row check (what a row may hold) and
its own words (a "reading", a "sample") and contract casing; the loop, the
limits and the error types are here once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bpmos.errors import DomainError, InvalidInput

# Rows per request: 10,000 rows of JSON (~1.5 MB) stay under Django's 2.5 MB
# DATA_UPLOAD_MAX_MEMORY_SIZE. Larger loads are sent as several batches.
MAX_BATCH = 10_000
# How far ahead of the server's clock a row may be (a gateway's clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)
# Most errors reported for one refused batch.
MAX_REPORTED_ERRORS = 20


class PayloadTooLarge(DomainError):
    """The batch has more rows than one request may carry (413)."""

    status_code = 413
    code = "payload_too_large"


class RowError(Exception):
    """A row check's refusal: the field it names and why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class BatchWords:
    """How one ingest names its rows in the refusals (its contract's words)."""

    noun: str  # "reading": "Send one reading object or ..."
    max_rows_key: str  # the 413's details key: "max_readings" or "maxReadings"
    repeat_message: str  # a row repeating an earlier key with other values


def batch_validate(
    *,
    rows: Any,
    check_row: Callable[[Any], tuple],
    key: Callable[[tuple], Hashable],
    words: BatchWords,
    max_rows: int = MAX_BATCH,
) -> tuple[list[tuple], int]:
    """Check a whole batch; returns (rows to store, repeats within the batch).

    ``check_row`` turns one row into its tuple or raises ``RowError``; ``key``
    names what makes two rows the same row (the table's unique columns). Raises
    ``InvalidInput`` naming every bad row (up to ``MAX_REPORTED_ERRORS``), or
    ``PayloadTooLarge`` past ``max_rows``.
    """
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(
            f"Send one {words.noun} object or a non-empty list of them.",
            code="validation_error",
            details={"readings": ["Expected an object or a non-empty list."]},
        )
    if len(rows) > max_rows:
        raise PayloadTooLarge(
            f"A batch holds at most {max_rows} {words.noun}s; "
            f"this one has {len(rows)}.",
            details={words.max_rows_key: max_rows, "readings": len(rows)},
        )
    checked: list[tuple] = []
    seen: dict[Hashable, int] = {}
    errors: dict[str, dict[str, list[str]]] = {}
    repeats = 0
    for index, row in enumerate(rows):
        try:
            values = check_row(row)
        except RowError as error:
            errors[str(index)] = {error.field: [error.message]}
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
            continue
        row_key = key(values)
        first = seen.get(row_key)
        if first is None:
            seen[row_key] = len(checked)
            checked.append(values)
        elif checked[first] == values:
            repeats += 1
        else:
            errors[str(index)] = {"ts": [words.repeat_message]}
    if errors:
        index, fields = next(iter(errors.items()))
        field, messages = next(iter(fields.items()))
        raise InvalidInput(
            f"Reading {index}: {field}: {messages[0]} Nothing was stored.",
            code="validation_error",
            details={"rows": errors},
        )
    return checked, repeats
