"""What a report is, and the registry of them.

A report declares its parameters, columns and charts, and reads its rows from
the apps' selectors. Views, the PDF renderer, the job runner and the scheduled
mail all go through the same methods:

* ``parse(query)``: the request's query values → typed parameters (400 with
  field details on bad input, via ``bpmos.errors.InvalidInput``);
* ``count(params)``: how many rows the full report has;
* ``rows(params)``: the rows, in order, as dicts keyed by ``Column.key``
  (a generator: a year of ledger events is never held in memory at once);
* ``summary(params)``: a few headline figures (``[{"label", "value"}]``);
* ``charts(params)``: the report's charts as data (``Chart``), drawn by
  ``compliance.reports.charts`` into the PDF.

Registering: ``@register`` on a ``Report`` subclass puts an instance into
``REGISTRY`` by its ``id``. Who may open a report is ``bpmos.access.ACTIONS
["report.<id>"]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bpmos.errors import NotFound


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
    """Base of every report: subclasses set the class attributes and
    implement ``parse``, ``count``, ``rows`` (and ``summary``/``charts`` if
    they have any)."""

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[str]  # "Production", "Operations", "Quality", ...
    params: ClassVar[tuple[Param, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    chart_ids: ClassVar[tuple[str, ...]] = ()
    formats: ClassVar[tuple[str, ...]] = ("csv", "pdf")

    @property
    def action(self) -> str:
        """The ``bpmos.access.ACTIONS`` rule naming who may open it."""
        return f"report.{self.id}"

    def parse(self, query: Mapping[str, str]) -> dict[str, Any]:
        raise NotImplementedError

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


REGISTRY: dict[str, Report] = {}


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
