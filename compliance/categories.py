"""Which BWMR category a passport belongs to: derived from its model, declared
in one place (``CategoryDeclaration``, edited in the admin).

A model with no declaration has no category: the figures report it as
undeclared (``None``) so nobody's mass silently falls out of a return.

Writes (the admin and the demo seed) go through ``category_declare`` and
``category_undeclare``, which check and audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count

from bpmos.errors import InvalidInput, NotFound
from compliance.models import Category, CategoryDeclaration
from elog import audit
from passports.models import Kind, Passport

CATEGORIES: tuple[str, ...] = tuple(Category.values)
# How the API names the packs of models with no declaration.
UNDECLARED = "undeclared"
_MAX_MODEL = CategoryDeclaration._meta.get_field("model").max_length
_MAX_NOTE = CategoryDeclaration._meta.get_field("note").max_length


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


def category_parse(value: Any) -> str | None:
    """A category as a URL names it: one of ``CATEGORIES`` or ``"undeclared"``
    (``None``); 404 for anything else."""
    if isinstance(value, str) and value in CATEGORIES:
        return value
    if value == UNDECLARED:
        return None
    raise NotFound(
        f"No battery category {str(value)[:40]!r}: one of "
        f"{', '.join((*CATEGORIES, UNDECLARED))}.",
        code="category_not_found",
    )


# --- reads -------------------------------------------------------------------


def declaration_list() -> list[CategoryDeclaration]:
    return list(CategoryDeclaration.objects.order_by("model"))


def undeclared_models() -> list[dict[str, Any]]:
    """Models on passports with no declaration: ``[{model, kind, passports,
    countsInEpr}]`` by model then kind. Only packs count in EPR (cells and
    modules reach the market inside them), so an undeclared pack model is a
    gap in the returns; an undeclared cell or module model is not."""
    rows = (
        Passport.objects.exclude(model__in=CategoryDeclaration.objects.values("model"))
        .values("model", "kind")
        .annotate(passports=Count("id"))
        .order_by("model", "kind")
    )
    return [
        {
            "model": row["model"],
            "kind": row["kind"],
            "passports": row["passports"],
            "countsInEpr": row["kind"] == Kind.PACK,
        }
        for row in rows
    ]


# --- writes ------------------------------------------------------------------


def _snapshot(row: CategoryDeclaration) -> dict[str, str]:
    return {"model": row.model, "category": row.category, "note": row.note}


def _checked(model: Any, category: Any, note: Any) -> tuple[str, str, str]:
    errors: dict[str, list[str]] = {}
    model = model.strip() if isinstance(model, str) else model
    if not isinstance(model, str) or not model:
        errors["model"] = ["A product model code."]
    elif len(model) > _MAX_MODEL:
        errors["model"] = [f"At most {_MAX_MODEL} characters."]
    if category not in CATEGORIES:
        errors["category"] = [f"One of {', '.join(CATEGORIES)}."]
    note = "" if note is None else note
    if not isinstance(note, str):
        errors["note"] = ["Text."]
    elif len(note) > _MAX_NOTE:
        errors["note"] = [f"At most {_MAX_NOTE} characters."]
    if errors:
        raise InvalidInput(
            "The declaration is not valid.", code="validation_error", details=errors
        )
    return model, category, note.strip()


@transaction.atomic
def category_declare(
    *, model: Any, category: Any, note: Any = "", actor: Any
) -> CategoryDeclaration:
    """Declare (or change) the BWMR category of a product model. Audited as
    ``category.declared`` (new) or ``category.changed`` (with before/after);
    declaring what is already declared writes nothing."""
    model, category, note = _checked(model, category, note)
    row = CategoryDeclaration.objects.select_for_update().filter(model=model).first()
    if row is None:
        row = CategoryDeclaration.objects.create(
            model=model, category=category, note=note
        )
        audit.record(
            actor=actor, action="category.declared", target=row, after=_snapshot(row)
        )
        return row
    before = _snapshot(row)
    row.category, row.note = category, note
    after = _snapshot(row)
    changed = [key for key in after if after[key] != before[key]]
    if not changed:
        return row
    row.save(update_fields=["category", "note", "updated_at"])
    audit.record(
        actor=actor,
        action="category.changed",
        target=row,
        before={key: before[key] for key in changed},
        after={key: after[key] for key in changed},
    )
    return row


@transaction.atomic
def category_undeclare(*, declaration_id: int, actor: Any) -> None:
    """Remove a declaration: the model's packs become undeclared in the
    figures (audited as ``category.undeclared``)."""
    row = CategoryDeclaration.objects.select_for_update().filter(pk=declaration_id)
    row = row.first()
    if row is None:
        raise NotFound(f"Category declaration {declaration_id} does not exist.")
    snapshot, pk = _snapshot(row), row.pk
    row.delete()
    audit.record(
        actor=actor,
        action="category.undeclared",
        target=None,
        target_type="compliance.categorydeclaration",
        target_id=str(pk),
        before=snapshot,
    )
