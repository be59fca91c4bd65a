"""The webhook dispatcher: committed log entries → one WebhookDelivery per entry and endpoint
that may receive it, in event-id order.

It reads the log after the `webhooks` LogCursor, never past the watermark (an id above it may
still commit below another: system.eventlog.watermark), a batch at a time. Each batch is one
transaction that holds the cursor row (SELECT ... FOR UPDATE NOWAIT on PostgreSQL; SQLite's
IMMEDIATE transactions serialise writers), writes the deliveries (the (endpoint, event_id)
constraint makes a replay harmless), advances the cursor and queues the delivery task of each
endpoint that got rows (published after commit). A new cursor starts at the log's head: an
endpoint receives events from its creation on, never the history.

Each run also sweeps: every enabled endpoint whose oldest pending delivery is due gets its
task queued again, which is what makes retries happen and recovers a task lost with a worker.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import OperationalError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from system.eventlog import watermark
from system.kernel.redis_client import get_redis
from system.kernel.timefmt import iso_z
from system.models import EventLogEntry, LogCursor, WebhookDelivery, WebhookEndpoint
from system.notify.delivery import endpoint_kick, kick_debounce_key, lock_key, payload_for
from system.notify.visibility import (
    ChannelAudiences,
    LogEntry,
    Viewer,
    endpoint_principal,
    event_visible,
)

CURSOR = "webhooks"
BATCH = 1000
MAX_BATCHES = 20  # per run; the next run (WEBHOOK_DISPATCH_SECONDS later) goes on
# The sweep queues an endpoint's task at most this often while it waits in the broker.
KICK_DEBOUNCE_SECONDS = 30
_SCOPES = ("agent_id", "channel_id", "session_id")


@dataclass
class DispatchResult:
    entries: int = 0
    deliveries: int = 0
    swept: int = 0
    cursor: int = 0


def message_id_for(*, event_id: int, endpoint: WebhookEndpoint) -> str:
    """The `webhook-id` of an event's delivery to one endpoint (unique per message)."""
    return f"msg_{event_id}_{endpoint.endpoint_id.hex[:12]}"


class _Target:
    """An enabled endpoint as the dispatcher matches entries against it."""

    def __init__(self, endpoint: WebhookEndpoint, viewer: Viewer) -> None:
        self.endpoint = endpoint
        self.viewer = viewer
        types = endpoint.event_types or []
        self.all_types = "*" in types
        self.types = frozenset(types)
        self.filter = {k: str(v) for k, v in (endpoint.filter or {}).items() if k in _SCOPES and v}

    def wants(self, entry: LogEntry, channels: ChannelAudiences) -> bool:
        if entry.created_at < self.endpoint.created_at:
            return False
        if not self.all_types and entry.event_type not in self.types:
            return False
        for scope, wanted in self.filter.items():
            if getattr(entry, scope) != wanted:
                return False
        return event_visible(self.viewer, entry, channels=channels)


def _targets(now: datetime) -> list[_Target]:
    endpoints = WebhookEndpoint.objects.filter(enabled=True).select_related(
        "owner", "api_key__owner", "api_key__created_by"
    )
    targets = []
    for endpoint in endpoints:
        principal = endpoint_principal(endpoint, now=now)
        if principal is not None:
            targets.append(_Target(endpoint, Viewer(principal)))
    return targets


def _read(after: int, limit: int) -> tuple[int, list[LogEntry]]:
    """(where the cursor may move to, the entries up to there), never past the watermark."""
    read = watermark.read_after(after=after, upto=None, limit=limit)
    if read is not None:
        safe, rows = read
    else:
        safe = watermark.read()
        rows = list(
            EventLogEntry.objects.filter(event_id__gt=after, event_id__lte=safe)
            .order_by("event_id")
            .values_list(*watermark.ROW_FIELDS)[:limit]
        )
    entries = [LogEntry.from_row(row) for row in rows]
    if len(entries) >= limit:
        safe = entries[-1].event_id  # a full batch: go on from its last entry next time
    return max(safe, after), entries


def _locked_cursor() -> LogCursor | None:
    """The cursor row, locked for this transaction; None when another run holds it. A new
    cursor starts at the log's head."""
    try:
        # A savepoint, so that NOWAIT's error leaves the transaction usable; the row lock
        # outlives the savepoint (it is the transaction's).
        with transaction.atomic():
            cursor = LogCursor.objects.select_for_update(nowait=True).filter(name=CURSOR).first()
    except OperationalError:
        return None  # another dispatch run holds it (PostgreSQL's NOWAIT)
    if cursor is None:
        cursor, _ = LogCursor.objects.get_or_create(
            name=CURSOR, defaults={"last_event_id": watermark.read()}
        )
    return cursor


class _Run:
    """What one dispatch run loads once: the endpoints (only when there are entries to match:
    an idle run costs no endpoint query) and the channel audiences it looked up."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.channels = ChannelAudiences()
        self._targets: list[_Target] | None = None
        self.kicked: set = set()  # endpoints whose task this run queued

    @property
    def targets(self) -> list[_Target]:
        if self._targets is None:
            self._targets = _targets(self.now)
        return self._targets


def _dispatch_batch(run: _Run, batch: int) -> tuple:
    """One batch in one transaction: (entries read, rows offered, cursor after; None when
    another run holds the cursor)."""
    with transaction.atomic():
        cursor = _locked_cursor()
        if cursor is None:
            return 0, 0, None
        upto, entries = _read(cursor.last_event_id, batch)
        rows = []
        kicked = set()
        for entry in entries:
            timestamp = iso_z(entry.created_at)
            for target in run.targets:
                if not target.wants(entry, run.channels):
                    continue
                endpoint = target.endpoint
                rows.append(
                    WebhookDelivery(
                        endpoint=endpoint,
                        event_id=entry.event_id,
                        event_type=entry.event_type,
                        message_id=message_id_for(event_id=entry.event_id, endpoint=endpoint),
                        payload=payload_for(
                            event_id=entry.event_id,
                            event_type=entry.event_type,
                            timestamp=timestamp,
                            data=entry.payload,
                        ),
                        created_at=timezone.now(),
                    )
                )
                kicked.add(endpoint.endpoint_id)
        if rows:
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        if upto != cursor.last_event_id:
            LogCursor.objects.filter(name=CURSOR).update(last_event_id=upto)
        for endpoint_id in sorted(kicked, key=str):
            endpoint_kick(endpoint_id)
        run.kicked |= kicked
        return len(entries), len(rows), upto


def due_endpoints(now: datetime) -> list:
    """Enabled endpoints whose oldest pending delivery is due (ids)."""
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        status=WebhookDelivery.Status.PENDING,
        id__lt=OuterRef("id"),
    )
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__enabled=True,
        )
        .filter(~Exists(earlier))
        .values_list("endpoint_id", flat=True)
        .distinct()[:1000]
    )


def webhooks_sweep(*, now: datetime | None = None, queued: frozenset | set = frozenset()) -> int:
    """Queue the task of each endpoint whose head delivery is due, unless its task runs (its
    lock is held), was queued by a sweep in the last KICK_DEBOUNCE_SECONDS, or is in
    `queued` (the dispatch run just queued it)."""
    now = now or timezone.now()
    client = get_redis()
    kicked = 0
    for endpoint_id in due_endpoints(now):
        if endpoint_id in queued or client.exists(lock_key(endpoint_id)):
            continue
        if not client.set(kick_debounce_key(endpoint_id), "1", nx=True, ex=KICK_DEBOUNCE_SECONDS):
            continue
        endpoint_kick(endpoint_id)
        kicked += 1
    return kicked


def webhooks_dispatch(*, now: datetime | None = None, batch: int = BATCH) -> DispatchResult:
    """Turn new log entries into deliveries (up to MAX_BATCHES batches), then sweep."""
    now = now or timezone.now()
    result = DispatchResult()
    run = _Run(now)
    for _ in range(MAX_BATCHES):
        entries, rows, upto = _dispatch_batch(run, batch)
        if upto is None:
            break
        result.entries += entries
        result.deliveries += rows
        result.cursor = upto
        if entries < batch:
            break
    result.swept = webhooks_sweep(now=now, queued=run.kicked)
    return result
