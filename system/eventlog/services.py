"""The event log's writers: event_emit and its batch forms, and pruning.

Each writer appends inside the caller's transaction and publishes the new ids after commit."""

import json
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from system.eventlog import events, watermark
from system.eventlog.events import EventScope
from system.kernel.timefmt import IsoZJSONEncoder
from system.models import EventLogEntry


def event_emit(
    *, event_type: str, data: dict[str, Any], scope: EventScope | None = None
) -> EventLogEntry:
    """Append an event to the log and publish its id to the ws processes after commit.

    Call inside the transaction that makes the change, as its last step: nothing is published
    if that transaction rolls back. Writers commit in parallel, ids in any order: the
    transaction registers as in flight first (a shared advisory lock, held until it ends), and
    readers deliver only up to the watermark below every writer in flight
    (system.eventlog.watermark), so none ever sees id N and later a smaller id appear.
    """
    return event_emit_many([(event_type, data, scope or EventScope())])[0]


def event_log_prune(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete entries older than the retention window, in batches that keep locks short.
    Returns how many rows went.

    The log is appended in time order (ids taken in order, each stamped when written), so the
    old entries are the ids below the first entry inside the window: found by walking the
    primary key from the oldest, with no index on created_at to maintain on every write."""
    cutoff = timezone.now() - older_than
    first_kept = (
        EventLogEntry.objects.filter(created_at__gte=cutoff)
        .order_by("event_id")
        .values_list("event_id", flat=True)
        .first()
    )
    old = EventLogEntry.objects.all()
    if first_kept is not None:
        old = old.filter(event_id__lt=first_kept)
    deleted = 0
    while True:
        ids = list(old.order_by("event_id").values_list("event_id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += EventLogEntry.objects.filter(event_id__in=ids).delete()[0]


def event_emit_sql(sql: str, params: dict[str, Any] | list[Any]) -> int:
    """event_emit_many for entries computed by the database (PostgreSQL only): a sweep that
    expires 100,000 sessions writes their events with one INSERT … SELECT instead of building
    100,000 rows in Python. `sql` inserts into the log and returns the new entries' `event_id,
    agent_id, channel_id, session_id, owner_id` (the UUIDs may come as text: cheaper than
    UUID objects, and the groups are strings); same contract as event_emit (inside the
    change's transaction, registered as in flight until commit, ids published after commit).
    Returns how many entries were written."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit_sql() must be called inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(watermark.REGISTER_SQL)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort()
    published = [
        (event_id, events.scope_groups(EventScope(agent, channel, session, owner)))
        for event_id, agent, channel, session, owner in rows
    ]
    transaction.on_commit(lambda: events.publish_many(published), robust=True)
    return len(rows)


# --- API keys ---------------------------------------------------------------------------------


def event_emit_many(
    events_to_emit: list[tuple[str, dict[str, Any], EventScope]],
) -> list[EventLogEntry]:
    """event_emit for a batch (a sweep that expires thousands of sessions): one insert, one
    registration, one after-commit publish, same contract."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit() must be called inside transaction.atomic()")
    if not events_to_emit:
        return []
    watermark.register_writer()  # before the INSERT takes ids
    entries = EventLogEntry.objects.bulk_create(
        EventLogEntry(
            event_type=event_type,
            # UUIDs, datetimes (as iso_z) and decimals normalised once: the log and the live
            # copy agree.
            payload=json.loads(json.dumps(data, cls=IsoZJSONEncoder)),
            agent_id=scope.agent_id,
            channel_id=scope.channel_id,
            session_id=scope.session_id,
            owner_id=scope.owner_id,
        )
        for event_type, data, scope in events_to_emit
    )
    # Ids and groups only: the live message is a wake-up, connections read the entries back
    # from the log. One pipelined round trip after commit, however many entries.
    published = [
        (entry.event_id, events.scope_groups(scope))
        for entry, (_, _, scope) in zip(entries, events_to_emit, strict=True)
    ]
    transaction.on_commit(lambda: events.publish_many(published), robust=True)
    return entries
