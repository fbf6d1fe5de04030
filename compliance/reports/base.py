"""What a report is, and the registry of them.

A report declares its parameters, columns and charts, and reads its rows from
the apps' selectors. Views, the PDF renderer, the job runner and the scheduled
mail all go through the same methods:

* ``parse(query)``: the request's query values → typed parameters (400 with
  field details on bad input, via ``bpmos.errors.InvalidInput``). The base
  class parses every declared ``Param`` by its type, fills the defaults (a
  ``from``/``to`` pair: the last 30 plant days up to today) and calls
  ``check`` for what only the subclass knows (does that line exist?);
* ``echo(params)``: the parsed parameters as JSON (dates ISO 8601), what the
  preview shows and a job stores: ``parse(echo(params)) == params``;
* ``count(params)``: how many rows the full report has;
* ``rows(params)``: the rows, in order, as dicts keyed by ``Column.key``
  (a generator: a year of ledger events is never held in memory at once).
  Values are JSON-able already: str, int, float, bool or None; a date is
  ``"2026-12-03"``, a time ``"2026-12-03T10:30:00Z"`` (UTC), a percentage a
  number (``61.7``);
* ``summary(params)``: a few headline figures (``[{"label", "value"}]``);
* ``charts(params)``: the report's charts as data (``Chart``), drawn by
  ``compliance.reports.charts`` into the PDF;
* ``empty_message(params)``: what the preview says when there are no rows.

Registering: ``@register`` on a ``Report`` subclass puts an instance into
``REGISTRY`` by its ``id``. Who may open a report is ``bpmos.access.ACTIONS
["report.<id>"]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar

from django.utils import timezone

from bpmos.errors import InvalidInput, NotFound
from compliance import periods

# Dates a report accepts (as the API's times: bpmos.fields.EARLIEST/LATEST).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Slugs and codes as the apps store them; also keeps NUL bytes and megabyte
# strings away from the database.
_TOKEN = re.compile(r"\w[\w.:@+-]{0,99}")
# The two as the schema states them (compliance.api.reports_views): a day
# from FIRST_DAY to LAST_DAY (with ``format: date`` for the calendar), a token.
DAY_PATTERN = r"^20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$"
TOKEN_PATTERN = "^" + _TOKEN.pattern + "$"


@dataclass(frozen=True)
class Param:
    name: str  # query key as the client sends it ("from", "to", "line", "fy")
    type: str  # "date" | "string" | "choice" | "fy" | "integer"
    label: str
    required: bool = False
    default: Any = None  # JSON-able; for dates a description like "30 days ago"
    choices: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "required": self.required,
            "default": self.default,
            "choices": list(self.choices),
        }

    def parse(self, raw: str) -> Any:
        """One query value by this parameter's type; ValueError says why not."""
        if raw == "":
            raise ValueError("Empty: leave the parameter out for its default.")
        if self.type == "date":
            return parse_day(raw)
        if self.type == "fy":
            periods.fy_parse(raw)
            return raw
        if self.type == "choice":
            if raw not in self.choices:
                raise ValueError(f"One of: {', '.join(self.choices)}.")
            return raw
        if self.type == "integer":
            if not re.fullmatch(r"-?[0-9]{1,9}", raw):
                raise ValueError("A whole number.")
            return int(raw)
        if not _TOKEN.fullmatch(raw):
            raise ValueError(
                "Letters, digits and - _ . : @ + only, at most 100 characters."
            )
        return raw


def parse_day(raw: str) -> date:
    """``"2026-12-03"`` → a date in [2000-01-01, 2099-12-31]; ValueError else."""
    if not _DATE.fullmatch(raw):
        raise ValueError("A date written YYYY-MM-DD, e.g. 2026-12-03.")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw} is not a day of the calendar.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"Between {FIRST_DAY} and {LAST_DAY}.")
    return day


@dataclass(frozen=True)
class Column:
    key: str  # camelCase, as in the preview's rows
    label: str  # the CSV header and the PDF table's heading
    type: str = "string"  # "string" | "number" | "percent" | "date" | "datetime"

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "type": self.type}


@dataclass
class Series:
    name: str
    points: list[tuple[str, float | None]]  # (x label, y)


@dataclass
class Chart:
    id: str  # "oee-trend", "production-per-day", "epr-vs-target"
    title: str
    kind: str  # "line" | "bar"
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            y is not None for series in self.series for _, y in series.points
        )

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "xLabel": self.x_label,
            "yLabel": self.y_label,
            "series": [
                {"name": s.name, "points": [{"x": x, "y": y} for x, y in s.points]}
                for s in self.series
            ],
        }


class Report:
    """Base of every report: subclasses set the class attributes, implement
    ``count`` and ``rows`` (and ``summary``, ``charts``, ``empty_message`` if
    they have any) and, for checks against the data, ``check``; ``parse``
    reads the declared ``params`` by their types."""

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[str]  # "Production", "Operations", "Quality", ...
    params: ClassVar[tuple[Param, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    chart_ids: ClassVar[tuple[str, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ("csv", "pdf")
    # A from/to pair: days, inclusive, in plant time (compliance.periods).
    default_span_days: ClassVar[int] = 30
    max_span_days: ClassVar[int] = 366

    @property
    def action(self) -> str:
        """The ``bpmos.access.ACTIONS`` rule naming who may open it."""
        return f"report.{self.id}"

    def parse(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Every declared parameter by its type, with its default when absent
        (None for an optional filter); 400 naming each bad field. A parameter
        another report takes but this one does not is a 400 too (the preview's
        schema lists every report's parameters); other keys are ignored."""
        errors: dict[str, list[str]] = {}
        params: dict[str, Any] = {}
        own = {param.name for param in self.params}
        for name in sorted(set(query) & (_all_param_names() - own)):
            takes = ", ".join(sorted(own)) or "no parameters"
            errors[name] = [f"The report {self.id} does not take {name} ({takes})."]
        for param in self.params:
            raw = query.get(param.name)
            if raw is None:
                params[param.name] = None
                continue
            try:
                params[param.name] = param.parse(str(raw))
            except ValueError as exc:
                errors[param.name] = [str(exc)]
        if not errors:
            self._defaults(params, errors)
        if not errors:
            self.check(params, errors)
        if errors:
            first = next(iter(errors))
            raise InvalidInput(
                f"{first}: {errors[first][0]}",
                code="validation_error",
                details=errors,
            )
        return params

    def _defaults(self, params: dict[str, Any], errors: dict[str, list[str]]) -> None:
        names = {param.name for param in self.params}
        if {"from", "to"} <= names:
            last = params["to"] or periods.local_date(timezone.now())
            first = params["from"] or last - timedelta(days=self.default_span_days - 1)
            if first > last:
                errors["from"] = [f"Must be on or before to ({last.isoformat()})."]
                return
            if (last - first).days + 1 > self.max_span_days:
                # Name what the caller sent: "to", or "from" when "to" is today.
                field = "to" if params["to"] else "from"
                errors[field] = [
                    f"from and to may span at most {self.max_span_days} days."
                ]
                return
            params["from"], params["to"] = first, last
        if "fy" in names and params["fy"] is None:
            params["fy"] = periods.fy_current()

    def check(self, params: dict[str, Any], errors: dict[str, list[str]]) -> None:
        """Checks against the data (an unknown line): add to ``errors``."""

    def echo(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parsed parameters as JSON: dates as ``YYYY-MM-DD``."""
        return {
            key: value.isoformat() if isinstance(value, date) else value
            for key, value in params.items()
        }

    def empty_message(self, params: dict[str, Any]) -> str:
        """What the preview panel says when the report has no rows."""
        if params.get("from"):
            return f"No data between {params['from']} and {params['to']}."
        return "No data."

    def count(self, params: dict[str, Any]) -> int:
        raise NotImplementedError

    def rows(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def summary(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def charts(self, params: dict[str, Any]) -> list[Chart]:
        return []

    def filename(self, params: dict[str, Any], fmt: str) -> str:
        """``<id>_<from>_<to>.<fmt>`` or ``<id>.<fmt>``."""
        span = "_".join(
            str(params[key]) for key in ("from", "to", "fy") if params.get(key)
        )
        return f"{self.id}_{span}.{fmt}" if span else f"{self.id}.{fmt}"

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "parameters": [p.as_dict() for p in self.params],
            "columns": [c.as_dict() for c in self.columns],
            "charts": list(self.chart_ids),
            "formats": list(self.formats),
        }


def period_of(params: dict[str, Any]) -> periods.Period:
    """The plant-time days ``from`` to ``to`` of parsed parameters."""
    return periods.Period(params["from"], params["to"])


REGISTRY: dict[str, Report] = {}


def _all_param_names() -> set[str]:
    return {param.name for report in REGISTRY.values() for param in report.params}


def register(cls: type[Report]) -> type[Report]:
    REGISTRY[cls.id] = cls()
    return cls


def report_get(report_id: str) -> Report:
    from compliance.reports import catalog  # noqa: F401  (fills the registry)

    try:
        return REGISTRY[report_id]
    except KeyError:
        raise NotFound(f"There is no report {report_id!r}.") from None


def report_list() -> list[Report]:
    from compliance.reports import catalog  # noqa: F401

    return list(REGISTRY.values())
