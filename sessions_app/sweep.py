"""The expiry sweep: set-based, idempotent, cheap in proportion to the sessions that are due.

Each batch is one UPDATE … RETURNING over the partial index (status = active) in its own
transaction, together with the batch's events: a sweep killed mid-way loses nothing (the
batch rolls back and the next sweep redoes it), and two sweeps at once never claim the same
row (the UPDATE re-checks `status = 'active'` after waiting for a row lock; on PostgreSQL the
batch is also picked with SKIP LOCKED). So every expiry and warning event is emitted once.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from sessions_app.models import Session
from sessions_app.services import SESSION_EVENT, session_scope
from sessions_app.timeouts import time_remaining_ms
from system.redis_client import get_redis
from system.services import event_emit_many

logger = logging.getLogger(__name__)

BATCH = 5000
LAST_SWEEP_KEY = "371os:sessions:last_sweep"


@dataclass(frozen=True)
class SweepResult:
    expired: int
    warned: int


def _claim(sql_set: str, sql_where: str, params: list, limit: int) -> list[uuid.UUID]:
    table = Session._meta.db_table
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {table} SET {sql_set} WHERE session_id IN ("  # noqa: S608 - fixed fragments
        f"SELECT session_id FROM {table} WHERE {sql_where} LIMIT %s{lock}) RETURNING session_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        rows = cursor.fetchall()
    return [r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(r[0]) for r in rows]


def _expire_batch(now: datetime) -> int:
    stamp = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic():
        ids = _claim(
            "status = 'expired', expired_at = %s",
            "status = 'active' AND expires_at <= %s",
            [stamp, stamp],
            BATCH,
        )
        sessions = Session.objects.filter(pk__in=ids).only(
            "session_id", "agent_uuid", "owner_id", "user_id", "context", "expires_at"
        )
        event_emit_many(
            [
                (
                    SESSION_EVENT,
                    {
                        "session_id": s.session_id,
                        "agent_id": s.agent_uuid,
                        "user_id": s.user_id,
                        "status": Session.Status.EXPIRED,
                        "context": s.context,
                        "expired_at": now,
                        "timestamp": now,
                    },
                    session_scope(s),
                )
                for s in sessions
            ]
        )
    return len(ids)


def _warn_batch(now: datetime) -> int:
    stamp = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic():
        ids = _claim(
            "warned_at = %s",
            "status = 'active' AND warned_at IS NULL AND warn_at <= %s AND expires_at > %s",
            [stamp, stamp, stamp],
            BATCH,
        )
        sessions = Session.objects.filter(pk__in=ids).only(
            "session_id", "agent_uuid", "owner_id", "user_id", "context", "expires_at"
        )
        event_emit_many(
            [
                (
                    SESSION_EVENT,
                    {
                        "session_id": s.session_id,
                        "agent_id": s.agent_uuid,
                        "user_id": s.user_id,
                        "status": Session.Status.ACTIVE,
                        "context": s.context,
                        "warning": "expiring_soon",
                        "expires_at": s.expires_at,
                        "time_remaining_ms": time_remaining_ms(expires=s.expires_at, now=now),
                        "timestamp": now,
                    },
                    session_scope(s),
                )
                for s in sessions
            ]
        )
    return len(ids)


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
