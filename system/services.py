"""State changes owned by the platform kernel."""

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from system import events
from system.authentication import KEY_PREFIX, hash_secret
from system.events import EventScope
from system.exceptions import InvalidCredentials, InvalidToken, ValidationFailed
from system.models import ApiKey, EventLogEntry
from system.roles import ROLES, user_roles

# Any constant shared by every writer of the event log.
_EVENT_LOG_LOCK = 371_000_001


def event_emit(
    *, event_type: str, data: dict[str, Any], scope: EventScope | None = None
) -> EventLogEntry:
    """Append an event to the log and publish its id to the ws processes after commit.

    Call inside the transaction that makes the change, as its last step: nothing is published
    if that transaction rolls back. On PostgreSQL a transaction-scoped advisory lock makes
    event ids commit in id order, so a reader that has seen id N can never later find a
    smaller id appear (which would break lossless resume); the lock is held until commit.
    """
    return event_emit_many([(event_type, data, scope or EventScope())])[0]


def event_log_prune(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete entries older than the retention window, in batches that keep locks short.
    Returns how many rows went.

    The log is appended in time order (ids commit in order, each stamped when written), so the
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
    change's transaction, the log's lock held until commit, ids published after commit).
    Returns how many entries were written."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit_sql() must be called inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOG_LOCK])
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort()
    published = [
        (event_id, events.scope_groups(EventScope(agent, channel, session, owner)))
        for event_id, agent, channel, session, owner in rows
    ]
    transaction.on_commit(lambda: events.publish_many(published))
    return len(rows)


# --- API keys ---------------------------------------------------------------------------------


def _validate_roles(roles: list[str]) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ValidationFailed(
            "Roles must be a non-empty subset of the platform's roles.",
            details={"roles": [f"Choose from {list(ROLES)}; unknown: {unknown}."]},
        )
    return ",".join(sorted(set(roles)))


def api_key_create(
    *, name: str, owner: AbstractBaseUser, roles: list[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which exists nowhere else afterwards."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed(details={"name": ["Must be 1 to 100 characters."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(details={"expires_at": ["Must be in the future."]})
    role_list = _validate_roles(roles)
    secret = secrets.token_hex(32)
    while True:
        prefix = secrets.token_hex(6)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    api_key = ApiKey.objects.create(
        name=name,
        owner=owner,
        roles=role_list,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
    )
    return api_key, f"{KEY_PREFIX}_{prefix}_{secret}"


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Idempotent: revoking a revoked key keeps its first revocation time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# --- JWT ----------------------------------------------------------------------------------------


def _token_pair(user: AbstractBaseUser) -> dict[str, Any]:
    refresh = RefreshToken.for_user(user)  # records the OutstandingToken row
    refresh["roles"] = sorted(user_roles(user))
    lifetime = jwt_settings.ACCESS_TOKEN_LIFETIME
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def token_obtain(*, username: str, password: str, request: HttpRequest | None = None) -> dict:
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    return _token_pair(user)


def _refresh_token(raw: str) -> RefreshToken:
    """A signed, unexpired refresh token for our audience and issuer (blacklist not checked)."""
    try:
        token = RefreshToken(raw, verify=False)
        token_backend.decode(raw, verify=True)  # signature, expiry, audience, issuer
        token.verify_token_type()
    except TokenError as exc:
        raise InvalidToken() from exc
    return token


@transaction.atomic
def token_refresh(*, refresh: str) -> dict:
    """Rotate: the presented refresh token is blacklisted and a new pair issued, with roles
    read afresh. Presenting a token twice fails the second time, even concurrently."""
    token = _refresh_token(refresh)
    user = (
        get_user_model()
        .objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM), is_active=True)
        .first()
    )
    outstanding = OutstandingToken.objects.filter(jti=token.get("jti")).first()
    if user is None or outstanding is None:
        raise InvalidToken()
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise InvalidToken()
    return _token_pair(user)


def token_revoke(*, refresh: str) -> None:
    """Blacklist a refresh token; idempotent for a token already revoked."""
    _refresh_token(refresh).blacklist()


def event_emit_many(
    events_to_emit: list[tuple[str, dict[str, Any], EventScope]],
) -> list[EventLogEntry]:
    """event_emit for a batch (a sweep that expires thousands of sessions): one insert, one
    lock, one after-commit publish, same contract."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit() must be called inside transaction.atomic()")
    if not events_to_emit:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOG_LOCK])
    entries = EventLogEntry.objects.bulk_create(
        EventLogEntry(
            event_type=event_type,
            # UUIDs, datetimes and decimals normalised once: the log and the live copy agree.
            payload=json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
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
    transaction.on_commit(lambda: events.publish_many(published))
    return entries
