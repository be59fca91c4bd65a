"""Which event ids are final: the safe watermark every reader of the log stops at.

Writers commit in parallel, so ids do not commit in id order: writer A may take id 10, writer
B id 11, and B commit first. A reader that delivered 11 and later saw 10 appear would break
lossless resume (a client that saw 11 never asks for 10). So no reader delivers past the
watermark W: every id <= W is either committed (and visible to a snapshot taken after W was
read) or will never exist (rolled back). W is "final" forever once computed: a later W may be
lower (see below) but nothing <= an earlier W ever appears.

PostgreSQL. A writer, inside its transaction and before its INSERT takes ids from the log's
sequence, registers as in flight (REGISTER_SQL): a SHARED transaction-scoped advisory lock
(writers never block each other) whose key is IN_FLIGHT | L, L the sequence's last value read
in the same statement (0 before the first id): a lower bound of every id it will get. The lock
goes at COMMIT or ROLLBACK, after PostgreSQL made the commit visible.

A reader computes W in two statements, in this order (`read`: the plpgsql function
eventlog_watermark, made by this app's migration, runs them one after the other):
  1. V = the sequence's last value (0 before the first id);
  2. M = the smallest in-flight key in pg_locks (this database's, other transactions': a
     transaction reads its own rows whatever their ids, so its own writes must not hold it
     back; a test inside one transaction emits then reads);
and W = min(V, M), V when nobody is in flight. Then it reads rows with id <= W in a later
statement (a new snapshot under READ COMMITTED; `read_after`'s eventlog_after does both in
one round trip, its statements taking a snapshot each, as in any VOLATILE function). Proof
that every id <= W is final, for any writer T that takes an id x <= W:
  - T registered before step 2: its lock is in pg_locks at step 2 unless T already ended. If
    it is, M <= key(T) < x, so x > W: impossible. If T ended (committed, or rolled back and x
    never exists), its commit was visible before its lock went, so before step 2, and the row
    read after W sees x.
  - T registered after step 2: it calls nextval after registering, so after step 1, and the
    sequence only grows, so x > V >= W: impossible.
(W can dip below an earlier W: a writer that read L, then took its lock after a reader's step
2 holds a key below that reader's V. Its ids are above that V all the same: a lower W is only
more careful, never wrong.)

In pg_locks a bigint advisory key shows as classid = its high 32 bits, objid = its low 32 bits,
objsubid = 1; IN_FLIGHT = 1 << 62 marks ours (classid in [2^30, 2^31)), so the key is
((classid - 2^30) << 32) | objid.

SQLite serialises writers (one write transaction at a time, ids in commit order): W is the
largest id.
"""

import json

from django.db import connection

from system.models import EventLogEntry

IN_FLIGHT = 1 << 62

_TABLE = EventLogEntry._meta.db_table
_SEQUENCE = f"pg_get_serial_sequence('{_TABLE}', 'event_id')"
_LAST_VALUE = f"COALESCE(pg_sequence_last_value({_SEQUENCE}), 0)"

# The writer's registration: one statement, one round trip, before the INSERT.
REGISTER_SQL = f"SELECT pg_advisory_xact_lock_shared({IN_FLIGHT} | {_LAST_VALUE})"


def register_writer() -> None:
    """Mark this transaction as writing to the log, before it takes ids (PostgreSQL; a no-op
    elsewhere). Call inside the transaction, right before the INSERT."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(REGISTER_SQL)


def read() -> int:
    """The watermark W (0 for an empty log): every id <= W is final. Read the rows in a later
    statement (never inside a REPEATABLE READ transaction that began before)."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"SELECT COALESCE(MAX(event_id), 0) FROM {_TABLE}")  # noqa: S608
            return cursor.fetchone()[0]
        # Steps 1 and 2 in this order, one round trip (migrations/0001_watermark_functions).
        cursor.execute("SELECT eventlog_watermark()")
        return cursor.fetchone()[0]


# The columns of a row as read_after returns it: readers that query the log themselves (where
# read_after answers None) ask for the same, `values_list(*ROW_FIELDS)`.
ROW_FIELDS = (
    "event_id",
    "event_type",
    "payload",
    "created_at",
    "agent_id",
    "channel_id",
    "session_id",
    "owner_id",
)


def read_after(*, after: int, upto: int | None, limit: int) -> tuple[int, list[tuple]] | None:
    """PostgreSQL: the watermark W (at most `upto`) and the first `limit` entries in
    (after, W], oldest first, as rows of ROW_FIELDS, in one round trip. None elsewhere: read()
    then query."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM eventlog_after(%s, %s, %s)", [after, upto, limit])
        rows = cursor.fetchall()
    # The first row carries the watermark alone; the entries follow (payload as jsonb text).
    safe = rows[0][0] or 0
    return safe, [
        (row[1], row[2], json.loads(row[3]) if isinstance(row[3], str) else row[3], *row[4:])
        for row in rows[1:]
    ]
