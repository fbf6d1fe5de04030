"""Values of a raw SQL row, converted as the ORM converts them.

Hot paths read with raw SQL (readings ingest, the line reads) where building the
ORM query cost more than running it. What the database hands back is then what
the ORM would have converted: SQLite returns text or naive datetimes, floats
for decimals, text for times. ``orm_values`` applies the same converters the
ORM's compiler applies (the backend's and the field's), so a model built with
``Model.from_db`` from a raw row holds exactly what a queryset would have
given (``orm_instance`` does both); on PostgreSQL there is usually nothing to
convert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection, models

_Converter = tuple[Any, list[Callable]]
M = TypeVar("M", bound=models.Model)
_converters: dict[tuple, list[_Converter]] = {}


def _converters_of(model: type[models.Model], names: Sequence[str]) -> list:
    key = (connection.vendor, model, tuple(names))
    found = _converters.get(key)
    if found is None:
        found = []
        for name in names:
            column = model._meta.get_field(name).get_col(model._meta.db_table)
            found.append(
                (
                    column,
                    connection.ops.get_db_converters(column)
                    + column.get_db_converters(connection),
                )
            )
        _converters[key] = found
    return found


def orm_values(
    model: type[models.Model], names: Sequence[str], values: Sequence[Any]
) -> list[Any]:
    """``values`` (the columns ``names`` of ``model``, in order) converted as a
    queryset of ``model`` would have converted them."""
    converted = list(values)
    for index, (column, converters) in enumerate(_converters_of(model, names)):
        value = converted[index]
        for convert in converters:
            value = convert(value, column, connection)
        converted[index] = value
    return converted


def orm_instance(model: type[M], names: Sequence[str], values: Sequence[Any]) -> M:
    """A ``model`` instance from a raw row's columns ``names``, as a queryset
    loading only those fields would have built it."""
    return model.from_db(connection.alias, names, orm_values(model, names, values))
