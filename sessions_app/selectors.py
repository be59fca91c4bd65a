"""Reads of sessions: object-level access by owner (admin sees all, others get 404)."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from messaging.models import Message
from sessions_app.exceptions import SessionNotFound
from sessions_app.models import Session
from system.kernel.access import unique_or_none, visible_to
from system.kernel.principal import Principal


def sessions_visible(*, principal: Principal) -> QuerySet:
    """THE session-owner rule: a session is its owner's (by user), and admins see all."""
    return visible_to(Session.objects.all(), principal=principal)


def session_get_visible(
    *, principal: Principal, session_id: str, not_found: type[Exception] = SessionNotFound
) -> Session:
    try:
        pk = uuid.UUID(session_id)
    except ValueError:
        raise not_found() from None
    # No select_related("agent"): the hot routes (heartbeat, read) never touch it.
    session = unique_or_none(sessions_visible(principal=principal).filter(pk=pk))
    if session is None:
        raise not_found()
    return session


def session_visible_to(*, principal: Principal, owner_id: int | None) -> bool:
    """sessions_visible for one session whose owner's user id is known (a logged session
    event carries it), without a query."""
    return principal.is_admin or (owner_id is not None and owner_id == principal.user_id)


def session_owned_by(*, principal: Principal, session_id: uuid.UUID | str) -> bool:
    """Whether the principal may see (and watch) this session. Sessions that do not exist
    answer False: existence does not leak."""
    return sessions_visible(principal=principal).filter(pk=session_id).exists()


def session_message_count(*, session: Session) -> int:
    # By channel_id: one COUNT on the messages' channel index, without loading the channel.
    return (
        Message.objects.filter(channel_id=session.channel_id).count() if session.channel_id else 0
    )


def with_message_counts(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(message_total=Count("channel__messages"))


def sessions_health_counts() -> dict[str, int]:
    """Both counts read the partial index on active sessions' expiry."""
    now = timezone.now()
    active = Session.objects.filter(status=Session.Status.ACTIVE, expires_at__gt=now)
    return {
        "active": active.count(),
        "expiring_soon": active.filter(warn_at__lte=now).count(),
    }


def session_stats(*, queryset: QuerySet) -> dict[str, int]:
    now = timezone.now()
    return queryset.aggregate(
        totalSessions=Count("pk"),
        activeSessions=Count("pk", filter=Q(status=Session.Status.ACTIVE, expires_at__gt=now)),
        expiredSessions=Count(
            "pk",
            filter=Q(status=Session.Status.EXPIRED)
            | Q(status=Session.Status.ACTIVE, expires_at__lte=now),
        ),
    )


def sessions_active_count() -> int:
    """Sessions in status active, the ones past `expires_at` that the sweep has not reached
    yet included (the status API's and /metrics' `active_sessions`; sessions_health_counts
    leaves those out)."""
    return Session.objects.filter(status=Session.Status.ACTIVE).count()


def sessions_count_by_status() -> dict[str, int]:
    """How many sessions are in each status, by status name; statuses with none are absent."""
    rows = Session.objects.values("status").annotate(n=Count("pk")).order_by("status")
    return {row["status"]: row["n"] for row in rows}


def sessions_active_per_bucket(*, bounds: Sequence[datetime]) -> list[int]:
    """For each bucket [bounds[i], bounds[i + 1]), how many sessions were active in it:
    created before its end and not ended or expired before its start (a session still active
    counts until it is ended or swept). One query with one filtered count per bucket, over the
    sessions that overlap the whole range (the admin dashboard's chart)."""
    if len(bounds) < 2:
        return []
    start = bounds[0]
    still_open = Q(ended_at__isnull=True, expired_at__isnull=True)
    overlapping = Session.objects.filter(created_at__lt=bounds[-1]).filter(
        still_open | Q(ended_at__gte=start) | Q(expired_at__gte=start)
    )
    counts = overlapping.aggregate(
        **{
            f"b{i}": Count(
                "pk",
                filter=Q(created_at__lt=end)
                & (still_open | Q(ended_at__gte=begin) | Q(expired_at__gte=begin)),
            )
            for i, (begin, end) in enumerate(pairwise(bounds))
        }
    )
    return [counts[f"b{i}"] for i in range(len(bounds) - 1)]
