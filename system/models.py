from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventLogEntry(models.Model):
    """One state change that clients may watch, written in the same transaction as the change.

    `event_id` is the resume cursor for WebSocket clients; the scope columns say who may see
    the event and let a reader fetch "everything after id X in this scope" from an index.
    """

    event_id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    agent_id = models.UUIDField(null=True, blank=True)
    channel_id = models.UUIDField(null=True, blank=True)
    session_id = models.UUIDField(null=True, blank=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "event log entry"
        verbose_name_plural = "event log"
        indexes = [
            models.Index(
                fields=["agent_id", "event_id"],
                name="eventlog_agent_idx",
                condition=Q(agent_id__isnull=False),
            ),
            models.Index(
                fields=["channel_id", "event_id"],
                name="eventlog_channel_idx",
                condition=Q(channel_id__isnull=False),
            ),
            models.Index(
                fields=["session_id", "event_id"],
                name="eventlog_session_idx",
                condition=Q(session_id__isnull=False),
            ),
            models.Index(
                fields=["owner_id", "event_id"],
                name="eventlog_owner_idx",
                condition=Q(owner_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.event_id} {self.event_type}"
