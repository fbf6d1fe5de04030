"""The kept row counts' deltas (``bpmos.rowcounts``)."""

from django.db import models


class RowCountDelta(models.Model):
    """A change of a kept count (``name``) by ``delta`` rows, written by the
    counted table's statement triggers in the writer's transaction. The count
    is the sum of its deltas; ``compact()`` folds them into one row."""

    name = models.CharField(max_length=64)
    delta = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["name", "delta"], name="rowcount_name_delta")]

    def __str__(self) -> str:
        return f"{self.name} {self.delta:+d}"
