"""How every service locks the row it changes (design: one place for the rule).

On PostgreSQL a service locks the rows it changes for the rest of its
transaction; SQLite runs its transactions BEGIN IMMEDIATE, which serialises
writers anyway.

"of self": a joined ``select_related`` must not lock the joined rows too (the
runbook, the category, the line), which serialised every change under them and
deadlocked gate changes against stage starts. "no key": FOR NO KEY UPDATE still
excludes every other writer of the row but not the KEY SHARE locks of
foreign-key checks, so a transaction that holds the audit chain's lock can
commit rows that reference a locked row (an issue on a work order being moved)
instead of deadlocking on it.
"""

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from bpmos.errors import NotFound

ROW_LOCK: dict[str, Any] = {"no_key": True, "of": ("self",)}

M = TypeVar("M", bound=Model)


def lock_row(queryset: QuerySet[M], *, what: str, **lookup: Any) -> M:
    """Lock and return the one row ``lookup`` finds, or raise ``NotFound`` (404)
    saying "``what`` does not exist."."""
    try:
        return queryset.select_for_update(**ROW_LOCK).get(**lookup)
    except queryset.model.DoesNotExist as exc:
        raise NotFound(f"{what} does not exist.") from exc
