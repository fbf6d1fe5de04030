"""The plant's shift calendar as the shift log sees it.

The calendar lives on ``lines.Line`` (``shift_start``, ``shift_minutes``: the
shifts OEE is computed over, ``lines.oee.shift_window``), but elog may not
import lines (import contract "elog-knows-no-domain"). So lines hands its
calendar in here from ``LinesConfig.ready()`` (as elog hands its audit writer to
``bpmos.audit``): ``calendar_register(fn)`` with ``fn(at, line_slug)`` returning
the (start, end) of the shift that contains ``at`` on that line, on the plant's
default line (the first active one) when ``line_slug`` is empty, or None for
a slug no line has. Without a registered calendar, or with no line at all,
shifts are the lines' default pattern: 8 hours from 06:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

Calendar = Callable[[datetime, str], tuple[datetime, datetime] | None]

DEFAULT_SHIFT_START = time(6, 0)  # lines.Line's defaults
DEFAULT_SHIFT_MINUTES = 480

_calendar: Calendar | None = None


class UnknownLine(LookupError):
    """No line has the slug asked for."""


def calendar_register(calendar: Calendar | None) -> None:
    """Install the shift calendar (lines does, at start-up)."""
    global _calendar
    _calendar = calendar


def default_shift(at: datetime) -> tuple[datetime, datetime]:
    """The default pattern's shift containing ``at`` (UTC)."""
    at = at.astimezone(UTC)
    anchor = at.replace(
        hour=DEFAULT_SHIFT_START.hour, minute=0, second=0, microsecond=0
    )
    length = timedelta(minutes=DEFAULT_SHIFT_MINUTES)
    start = anchor + ((at - anchor) // length) * length
    return start, start + length


def shift_of(*, at: datetime, line: str = "") -> tuple[datetime, datetime]:
    """The shift containing ``at``: of ``line`` (a slug), else of the plant's
    default line. Raises ``UnknownLine`` for a slug no line has."""
    if _calendar is None:
        if line:
            raise UnknownLine(line)
        return default_shift(at)
    window = _calendar(at, line)
    if window is None:
        if line:
            raise UnknownLine(line)
        return default_shift(at)
    return window
