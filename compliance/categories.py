"""Which BWMR category a passport belongs to: derived from its model, declared
in one place (``CategoryDeclaration``, edited in the admin).

A model with no declaration has no category: the figures report it as
undeclared (``None``) so nobody's mass silently falls out of a return.
"""

from __future__ import annotations

from collections.abc import Iterable

from compliance.models import Category, CategoryDeclaration

CATEGORIES: tuple[str, ...] = tuple(Category.values)


def category_map(models: Iterable[str] | None = None) -> dict[str, str]:
    """``{model: category}`` for the given models (all declared when None)."""
    rows = CategoryDeclaration.objects.all()
    if models is not None:
        rows = rows.filter(model__in=set(models))
    return dict(rows.values_list("model", "category"))


def category_of(model: str) -> str | None:
    return category_map([model]).get(model)


def category_label(category: str | None) -> str:
    if category is None:
        return "Undeclared"
    return Category(category).label
