"""The record of an ``Idempotency-Key``: who sent it, for which request, and
the answer to replay."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class KeyStatus(models.TextChoices):
    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"


class IdempotencyKey(models.Model):
    """One key of one user: the request it was first sent with (method, path
    and a fingerprint of the body), then the answer to replay for 24 hours.

    ``locked_until`` is the lease of the request that runs it: while it lies in
    the future another request with the key is refused (409); past it, the
    runner is presumed gone (its transaction rolled back) and a retry takes
    the key over."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=KeyStatus.choices, default=KeyStatus.STARTED
    )
    locked_until = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], name="idempotency_key_user_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
