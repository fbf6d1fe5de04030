"""The outbox: every published event, stored in the publisher's transaction."""

from django.db import models


class OutboxEvent(models.Model):
    """A domain event waiting for (or past) delivery to live subscribers.

    Written in the same transaction as the change it announces, so a rolled-back
    change is never announced and a committed one is never lost: delivery
    happens after commit and is retried by a periodic task until it succeeds.
    The ``id`` is the event id WebSocket clients resume from.
    """

    name = models.CharField(max_length=100)
    topics = models.JSONField()
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"],
                name="outbox_undelivered_idx",
                condition=models.Q(delivered_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.name}"


class OutboxTopic(models.Model):
    """One topic of an outbox event: what a resuming client's replay looks up.

    ``OutboxEvent.topics`` keeps the list for delivery; these rows index it by
    (topic, event) so "events after id N on these topics" is an index range scan
    on both PostgreSQL and SQLite (SQLite cannot search inside a JSON list).
    """

    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, related_name="topic_rows"
    )
    topic = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "event"], name="outbox_topic_event_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.event_id}"
