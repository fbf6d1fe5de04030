"""The audit log: append-only, hash-chained records of every write."""

from django.conf import settings
from django.db import models


class AuditRecord(models.Model):
    """One write: who did what to which object, from where, with before/after.

    Records form a chain: ``seq`` counts from 1 without gaps and ``prev_hash``
    is the previous record's ``hash``; ``hash`` is an HMAC-SHA256 (key from
    ``BPMOS_AUDIT_KEY``) over this record's content and ``prev_hash``, so an
    altered, removed or inserted record breaks the chain where it happened and
    someone with database access but not the key cannot re-forge it. Database
    triggers refuse UPDATE and DELETE (migration 0002, PostgreSQL and SQLite);
    the application offers neither (see ``elog.audit``).
    ``elog.services.audit_chain_verify`` walks the chain.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a user with history is deactivated, never deleted
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    source = models.CharField(max_length=20, default="system")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_repr}"
