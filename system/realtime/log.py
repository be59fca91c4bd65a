"""Reading the event log for WebSocket delivery.

Two readers: `log_entries` (a filtered range, for replays and for a connection that fell behind
the window) and `LogWindow`, the newest entries of the log held in memory once per process
(per event loop), so that the thousand connections woken by one event fill their gaps from
memory after at most one query between them.

Writers commit in parallel, so ids do not commit in id order: both read only up to the log's
watermark (system.eventlog.watermark), below which every id is final, committed or never to
exist. A window filled up to a watermark is therefore complete up to it (its `end`, which may
be above its newest entry): no late commit can land inside it. A published id above the
watermark (its writer committed, one with a smaller id has not yet) waits: the hub reads the
watermark again until it passes (system.realtime.hub).
"""

import asyncio
import bisect
import json
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Min, Q

from system.eventlog import watermark
from system.kernel.timefmt import IsoZJSONEncoder, iso_z
from system.models import EventLogEntry
from system.realtime.db import db_call

_NO_BOUND = 2**63 - 1


@dataclass(slots=True, eq=False)
class LoggedEvent:
    """One entry of the log, with its scope (UUIDs as strings) for filtering and access.
    Treat as immutable: the window shares one instance between all connections."""

    event_id: int
    event_type: str
    payload: Any
    timestamp: str
    agent_id: str | None
    channel_id: str | None
    session_id: str | None
    owner_id: int | None
    _text: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: tuple) -> "LoggedEvent":
        event_id, event_type, payload, created_at, agent_id, channel_id, session_id, owner = row
        return cls(
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            # As event_emit publishes it, so replayed and live copies are identical.
            timestamp=iso_z(created_at),
            agent_id=str(agent_id) if agent_id else None,
            channel_id=str(channel_id) if channel_id else None,
            session_id=str(session_id) if session_id else None,
            owner_id=owner,
        )

    def scope_keys(self) -> Iterable[tuple[str, str | int]]:
        if self.agent_id:
            yield ("agent", self.agent_id)
        if self.channel_id:
            yield ("channel", self.channel_id)
        if self.session_id:
            yield ("session", self.session_id)
        if self.owner_id is not None:
            yield ("owner", self.owner_id)

    def message(self) -> dict[str, Any]:
        """What a client receives: exactly what event_emit publishes, minus the dispatch type."""
        return {
            "event": self.event_type,
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "data": self.payload,
        }

    def text(self) -> str:
        """`message()` as JSON, serialised once however many connections send it."""
        if self._text is None:
            self._text = json.dumps(self.message(), cls=IsoZJSONEncoder)
        return self._text


def log_entries(*, after: int, upto: int | None = None, where: Q | None = None, limit: int):
    """Entries with after < event_id <= upto, oldest first. `upto` must be final (a watermark
    read before, or an id at or below one); None: up to the watermark now."""
    if upto is None:
        upto = watermark.read()
    entries = EventLogEntry.objects.filter(event_id__gt=after, event_id__lte=upto)
    if where is not None:
        entries = entries.filter(where)
    rows = entries.order_by("event_id").values_list(*watermark.ROW_FIELDS)[:limit]
    return [LoggedEvent.from_row(row) for row in rows]


def log_read(
    *, after: int | None, upto: int | None, span: int, limit: int
) -> tuple[int, int, list[LoggedEvent]]:
    """For the window, in one call (one thread hop): the watermark W (at most `upto`), where
    to read from (`after`; W - span when None or further below W than `span`), and the first
    `limit` entries in (that, W], oldest first."""
    if after is not None:
        # The usual case, one round trip: the window keeps up with the log.
        read = watermark.read_after(after=after, upto=upto, limit=limit)
        if read is None:
            # Writers serialised (SQLite): what a read sees is final, up to its last id.
            entries = log_entries(after=after, upto=upto or _NO_BOUND, limit=limit)
            return (entries[-1].event_id if entries else after), after, entries
        if read[0] - after <= span:
            return read[0], after, [LoggedEvent.from_row(row) for row in read[1]]
    safe = watermark.read()
    if upto is not None:
        safe = min(safe, upto)
    if after is None or safe - after > span:
        after = max(safe - span, 0)
    entries = log_entries(after=after, upto=safe, limit=limit) if safe > after else []
    return safe, after, entries


def log_head() -> int:
    """The log's head, the watermark (0 before the first id): nothing at or below it is still
    to come, even when no entry is left at or below it (a pruned or emptied log, ids rolled
    back), so a new subscription starts there, not at the last entry still in the table."""
    return watermark.read()


def log_bounds() -> tuple[int | None, int | None]:
    """The oldest id in the log and its head, the watermark: (None, None) when no entry is at
    or below it (an empty log, as far as a reader may tell). The head may be above the newest
    entry (ids rolled back): nothing at or below it is still to come."""
    head = watermark.read()
    bounds = EventLogEntry.objects.filter(event_id__lte=head).aggregate(
        oldest=Min("event_id"), newest=Max("event_id")
    )
    if bounds["newest"] is None:
        return None, None
    return bounds["oldest"], head


def resync_needed(*, last_event_id: int, oldest: int | None, newest: int | None) -> bool:
    """Whether events after `last_event_id` may have been pruned (or the id is not from this
    log at all), so that a replay cannot be complete and the client must reload over REST."""
    if newest is None:
        # An empty log: either nothing happened yet, or everything was pruned.
        return last_event_id > 0
    if last_event_id > newest:
        return True
    return last_event_id > 0 and oldest is not None and oldest > last_event_id + 1


class LogWindow:
    """The newest entries of the log, complete for ids in (start, end].

    Shared by every connection of one event loop. `cover()` extends it with one query however
    many connections ask at once; entries are indexed by scope so that a connection watching
    one channel looks only at that channel's entries.
    """

    FETCH = 1000

    def __init__(self, *, size: int) -> None:
        self.size = size
        self.start: int | None = None
        self.end: int | None = None
        self.entries: list[LoggedEvent] = []
        self.by_scope: dict[tuple[str, str | int], list[LoggedEvent]] = {}
        self._lock = asyncio.Lock()
        self._refreshed_at = 0.0

    def covers(self, event_id: int) -> bool:
        return self.end is not None and event_id <= self.end

    async def cover(self, upto: int | None, *, max_age: float = 0.0) -> None:
        """Make the window complete up to `upto`, a published id, or as far towards it as the
        watermark allows (`covers(upto)` tells); with None, up to the watermark now, unless
        the window was refreshed less than `max_age` seconds ago."""
        if upto is not None and self.covers(upto):
            return
        async with self._lock:
            if upto is not None and self.covers(upto):
                return
            if upto is None and time.monotonic() - self._refreshed_at < max_age:
                return
            target, start, fetched = await db_call(log_read)(
                after=self.end, upto=upto, span=self.size, limit=self.FETCH
            )
            if start != self.end:
                # First use, or so far behind that the missing range is bigger than the window:
                # start afresh just below the watermark (`upto` comes from a live message, a
                # hint only: never above it).
                self._reset(start)
            while True:
                self._append(fetched)
                if len(fetched) < self.FETCH:
                    break
                assert self.end is not None
                fetched = await db_call(log_entries)(after=self.end, upto=target, limit=self.FETCH)
            assert self.end is not None
            # Every id up to the watermark is final: complete up to it, entries or not.
            self.end = max(self.end, target)
            self._refreshed_at = time.monotonic()

    def head(self, newest: int | None) -> int:
        """The log's head given its head from log_bounds: the window's end when that is
        higher, for entries this process read that have since left the table (all pruned, or
        the table emptied): ids are never reused, so nothing at or below it is new."""
        return max(newest or 0, self.end or 0)

    def start_at(self, head: int) -> None:
        """Begin an unused window, empty, at `head` (a watermark read from the log): the
        first fill then reads only what came after it, not the WS_LOG_WINDOW entries before
        (a first live event that waited on 10,000 rows). Connections further behind replay
        from the database, as for any cursor below the window."""
        if self.end is None:
            self._reset(head)
            self._refreshed_at = time.monotonic()

    def _reset(self, base: int) -> None:
        self.start = self.end = base
        self.entries = []
        self.by_scope = {}

    def _append(self, fetched: list[LoggedEvent]) -> None:
        for entry in fetched:
            self.entries.append(entry)
            for key in entry.scope_keys():
                self.by_scope.setdefault(key, []).append(entry)
        if fetched:
            self.end = fetched[-1].event_id
        # Trim in chunks, not one entry per append.
        excess = len(self.entries) - self.size
        if excess > max(self.size // 10, 1):
            dropped, self.entries = self.entries[:excess], self.entries[excess:]
            self.start = dropped[-1].event_id
            for key in {key for entry in dropped for key in entry.scope_keys()}:
                kept = _after(self.by_scope[key], self.start)
                if kept:
                    self.by_scope[key] = kept
                else:
                    del self.by_scope[key]

    def after(
        self, cursor: int, scopes: Iterable[tuple[str, str | int]] | None
    ) -> list[LoggedEvent]:
        """Entries after `cursor` (which must be >= start): all of them, or with `scopes` only
        those in one of these scopes, in id order."""
        if scopes is None:
            return _after(self.entries, cursor)
        picked: dict[int, LoggedEvent] = {}
        for key in scopes:
            for entry in _after(self.by_scope.get(key, []), cursor):
                picked[entry.event_id] = entry
        return [picked[event_id] for event_id in sorted(picked)]


def _after(entries: list[LoggedEvent], cursor: int) -> list[LoggedEvent]:
    return entries[bisect.bisect_right(entries, cursor, key=lambda e: e.event_id) :]


_windows: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LogWindow]" = (
    weakref.WeakKeyDictionary()
)


def log_window(size: int) -> LogWindow:
    """This event loop's window (daphne runs one loop per process; tests one per test)."""
    loop = asyncio.get_running_loop()
    window = _windows.get(loop)
    if window is None:
        window = _windows[loop] = LogWindow(size=size)
    return window
