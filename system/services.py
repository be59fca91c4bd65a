"""State changes owned by the platform kernel."""

import json
from datetime import timedelta
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from system import events
from system.events import EventScope
from system.models import EventLogEntry

# Any constant shared by every writer of the event log.
_EVENT_LOG_LOCK = 371_000_001


def event_emit(
    *, event_type: str, data: dict[str, Any], scope: EventScope | None = None
) -> EventLogEntry:
    """Append an event to the log and publish it to the channel layer after commit.

    Call inside the transaction that makes the change, as its last step: nothing is published
    if that transaction rolls back. On PostgreSQL a transaction-scoped advisory lock makes
    event ids commit in id order, so a reader that has seen id N can never later find a
    smaller id appear (which would break lossless resume); the lock is held until commit.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit() must be called inside transaction.atomic()")
    scope = scope or EventScope()
    # Normalise UUIDs, datetimes and decimals once, so the log and the live copy are identical.
    payload = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOG_LOCK])
    entry = EventLogEntry.objects.create(
        event_type=event_type,
        payload=payload,
        agent_id=scope.agent_id,
        channel_id=scope.channel_id,
        session_id=scope.session_id,
        owner_id=scope.owner_id,
    )
    message = {
        "event": event_type,
        "event_id": entry.event_id,
        "timestamp": entry.created_at.isoformat(),
        "data": payload,
    }
    transaction.on_commit(partial(events.publish, message, events.scope_groups(scope)))
    return entry


def event_log_prune(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete entries older than the retention window, in batches that keep locks short.
    Returns how many rows went."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            EventLogEntry.objects.filter(created_at__lt=cutoff)
            .order_by("event_id")
            .values_list("event_id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += EventLogEntry.objects.filter(event_id__in=ids).delete()[0]
