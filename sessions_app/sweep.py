"""The expiry sweep: set-based, idempotent, cheap in proportion to the sessions that are due.

Each batch is one UPDATE … RETURNING over the partial index (status = active) in its own
transaction, together with the batch's events: a sweep killed mid-way loses nothing (the
batch rolls back and the next sweep redoes it), and two sweeps at once never claim the same
row (the UPDATE re-checks `status = 'active'` after waiting for a row lock; on PostgreSQL the
batch is also picked with SKIP LOCKED). So every expiry and warning event is emitted once.

On PostgreSQL a batch is ONE statement: the UPDATE and the INSERT of its events into the log
(payloads built by jsonb_build_object) in a data-modifying CTE, so no session row travels to
Python; 100,000 expiries cost about what the database needs to write them. Elsewhere (SQLite,
the embedded path) the claimed rows come back and go through event_emit_many. Both paths write
the same payloads; tests compare them.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from sessions_app.models import Session
from sessions_app.services import SESSION_EVENT, session_event_head, session_scope
from sessions_app.timeouts import time_remaining_ms
from system.eventlog.services import event_emit_many, event_emit_sql
from system.kernel.redis_client import get_redis
from system.kernel.timefmt import iso_z
from system.models import EventLogEntry

logger = logging.getLogger(__name__)

BATCH = 5000
LAST_SWEEP_KEY = "371os:sessions:last_sweep"

EXPIRE_SET = "status = 'expired', expired_at = %(now)s"
EXPIRE_WHERE = "status = 'active' AND expires_at <= %(now)s"
WARN_SET = "warned_at = %(now)s"
WARN_WHERE = (
    "status = 'active' AND warned_at IS NULL AND warn_at <= %(now)s AND expires_at > %(now)s"
)

# A timestamp as system.kernel.timefmt.iso_z writes it (what event_emit stores): UTC,
# milliseconds, "Z".
_PG_JSON_TIME = "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') || 'Z'"
_PG_PAYLOAD_COMMON = (
    "'session_id', session_id::text, 'agent_id', agent_uuid::text, 'user_id', user_id, "
    "'context', '{}'::jsonb, 'context_keys', '[]'::jsonb, 'timestamp', %(now_json)s::text"
)
PG_EXPIRY_PAYLOAD = (
    f"jsonb_build_object({_PG_PAYLOAD_COMMON}, 'status', 'expired', 'event', 'expired', "
    "'expired_at', %(now_json)s::text)"
)
PG_WARNING_PAYLOAD = (
    f"jsonb_build_object({_PG_PAYLOAD_COMMON}, 'status', 'active', "
    "'event', 'expiry_warning', 'warning', 'expiring_soon', "
    f"'expires_at', {_PG_JSON_TIME.format(c='expires_at')}, "
    "'time_remaining_ms', GREATEST(0, floor(extract(epoch FROM expires_at - %(now)s) * 1000))"
    "::bigint)"
)


@dataclass(frozen=True)
class SweepResult:
    expired: int
    warned: int


def sessions_sweep(*, now: datetime | None = None) -> SweepResult:
    """Expire every due active session and warn those inside their warning threshold."""
    now = now or timezone.now()
    expired = warned = 0
    while batch := _expire_batch(now):
        expired += batch
    while batch := _warn_batch(now):
        warned += batch
    try:
        get_redis().set(LAST_SWEEP_KEY, time.time())
    except Exception as exc:  # noqa: BLE001 - the work is done; health will say "degraded"
        logger.warning("could not record the sweep time (%s)", type(exc).__name__)
    return SweepResult(expired, warned)


def _expire_batch(now: datetime) -> int:
    return _batch(now, EXPIRE_SET, EXPIRE_WHERE, "expires_at", PG_EXPIRY_PAYLOAD, expiry_payload)


def _warn_batch(now: datetime) -> int:
    return _batch(now, WARN_SET, WARN_WHERE, "warn_at", PG_WARNING_PAYLOAD, warning_payload)


def _batch(
    now: datetime,
    sql_set: str,
    sql_where: str,
    order: str,
    pg_payload: str,
    payload: Callable[[Session, datetime], dict],
) -> int:
    """Claim and announce one batch: in SQL on PostgreSQL, else through event_emit_many."""
    if connection.vendor == "postgresql":
        return _pg_batch(now, sql_set, sql_where, order, pg_payload)
    with transaction.atomic():
        sessions = _claim(now, sql_set, sql_where)
        event_emit_many([(SESSION_EVENT, payload(s, now), session_scope(s)) for s in sessions])
    return len(sessions)


def expiry_payload(session: Session, now: datetime) -> dict:
    return {
        **session_event_head(session, status=Session.Status.EXPIRED),
        "event": "expired",
        "expired_at": now,
        "timestamp": now,
    }


def warning_payload(session: Session, now: datetime) -> dict:
    return {
        **session_event_head(session, status=Session.Status.ACTIVE),
        "event": "expiry_warning",
        "warning": "expiring_soon",
        "expires_at": session.expires_at,
        "time_remaining_ms": time_remaining_ms(expires=session.expires_at, now=now),
        "timestamp": now,
    }


def _claim(now: datetime, sql_set: str, sql_where: str) -> list[Session]:
    """Claim up to BATCH sessions (the portable path) and return them as they were claimed."""
    table = Session._meta.db_table
    sql = (
        f"UPDATE {table} SET {sql_set} WHERE session_id IN ("  # noqa: S608 - fixed fragments
        f"SELECT session_id FROM {table} WHERE {sql_where} LIMIT %(limit)s) RETURNING session_id"
    )
    params = {"now": connection.ops.adapt_datetimefield_value(now), "limit": BATCH}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(r[0]) for r in cursor]
    return list(
        Session.objects.filter(pk__in=ids).only(
            "session_id", "agent_uuid", "owner_id", "user_id", "expires_at"
        )
    )


def _pg_batch(now: datetime, sql_set: str, sql_where: str, order: str, payload: str) -> int:
    """One batch in one statement. The due rows are picked in index order (`order`: the column
    of the partial index the WHERE matches) and updated by primary key, so the cost follows
    the due sessions, not the table. The outer WHERE repeats the condition: a row another
    sweep changed after this one picked it is left alone (as in the portable path)."""
    sessions, log = Session._meta.db_table, EventLogEntry._meta.db_table
    sql = (
        f"WITH claimed AS (UPDATE {sessions} SET {sql_set} WHERE session_id = ANY(ARRAY("  # noqa: S608
        f"SELECT session_id FROM {sessions} WHERE {sql_where} ORDER BY {order} LIMIT %(limit)s "
        f"FOR UPDATE SKIP LOCKED)) AND {sql_where} "
        "RETURNING session_id, agent_uuid, owner_id, user_id, expires_at) "
        f"INSERT INTO {log} (event_type, payload, agent_id, session_id, owner_id, created_at) "
        f"SELECT %(event_type)s, {payload}, agent_uuid, session_id, owner_id, %(created)s "
        "FROM claimed RETURNING event_id, agent_id::text, NULL, session_id::text, owner_id"
    )
    params = {
        "now": now,
        "now_json": iso_z(now),
        "limit": BATCH,
        "event_type": SESSION_EVENT,
        "created": timezone.now(),
    }
    with transaction.atomic():
        return event_emit_sql(sql, params)
