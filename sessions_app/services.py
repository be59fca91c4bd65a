"""Session lifecycle, shared by /api/v1/sessions and /api/messaging/sessions.

Every operation first applies lazy expiry: a session found past its `expires_at` is marked
expired (and its event emitted) in a committed transaction of its own, then the caller gets
SessionExpired (410) — so the row says `expired` from the first request that notices.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, AgentNotRunning, AgentRuntimeError
from agents.models import Agent
from agents.runtime import ChatMessage
from agents.services import agent_complete
from messaging.members import sender_check
from messaging.models import Message
from messaging.services import channel_create
from sessions_app import timeouts
from sessions_app.exceptions import SessionEnded, SessionExpired, SessionRenewalLimit
from sessions_app.models import Session
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.principal import Principal

SESSION_EVENT = "session_update"
_CONTEXT_MESSAGES = 20
# A session's context may hold up to 1 MiB: its events carry what changed, up to this size.
CONTEXT_EVENT_MAX_BYTES = 4096


def session_config(session: Session) -> timeouts.TimeoutConfig:
    return timeouts.TimeoutConfig(
        timeout_minutes=session.timeout_minutes,
        auto_renew=session.auto_renew,
        max_duration_minutes=session.max_duration_minutes,
        warning_threshold_minutes=session.warning_threshold_minutes,
    )


def _set_config(session: Session, config: timeouts.TimeoutConfig) -> None:
    session.timeout_minutes = config.timeout_minutes
    session.auto_renew = config.auto_renew
    session.max_duration_minutes = config.max_duration_minutes
    session.warning_threshold_minutes = config.warning_threshold_minutes


def _set_expiry(session: Session, now: datetime, *, renewing: bool = False) -> None:
    """Recompute expires_at (and warn_at). `renewing` measures from the last activity even
    when autoRenew is off: an explicit renewal always extends."""
    config = session_config(session)
    if renewing:
        config = timeouts.TimeoutConfig(**{**config.__dict__, "auto_renew": True})
    session.expires_at = timeouts.expires_at(
        created_at=session.created_at, last_activity=session.last_activity, config=config, now=now
    )
    session.warn_at = session.expires_at - timedelta(minutes=session.warning_threshold_minutes)


def session_scope(session: Session) -> EventScope:
    return EventScope(
        session_id=session.session_id, agent_id=session.agent_uuid, owner_id=session.owner_id
    )


def session_event_head(session: Session, *, status: str) -> dict[str, Any]:
    """The fields every `session_update` event starts with (here and in the sweep's, whose
    expiry and warning change no context: `context` is then `{}`)."""
    return {
        "session_id": session.session_id,
        "agent_id": session.agent_uuid,
        "user_id": session.user_id,
        "status": status,
        "context": {},
        "context_keys": [],
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def context_digest(context: dict[str, Any]) -> str:
    """`sha256:<hex>` of the context's canonical JSON (sorted keys, no spaces, UTF-8): equal
    digests, equal contexts. A client compares it with its copy's to know when to re-read
    the session (GET), instead of every event carrying the whole context."""
    return "sha256:" + hashlib.sha256(_canonical(context).encode()).hexdigest()


def session_emit(
    session: Session, *, context_changed: dict[str, Any] | None = None, **extra: Any
) -> None:
    """Emit a `session_update`. Its `context` holds only the keys this change set
    (`context_changed`: the initial context on creation, a message's update), `{}` when they
    exceed CONTEXT_EVENT_MAX_BYTES (then `context_truncated` is true); `context_keys` names
    them all the same, and `context_digest` identifies the whole context after the change."""
    changed = context_changed or {}
    fits = len(_canonical(changed).encode()) <= CONTEXT_EVENT_MAX_BYTES
    event_emit(
        event_type=SESSION_EVENT,
        data={
            **session_event_head(session, status=session.status),
            "context": changed if fits else {},
            "context_keys": sorted(changed),
            "context_truncated": not fits,
            "context_digest": context_digest(session.context),
            "expires_at": session.expires_at,
            "timestamp": timezone.now(),
            **extra,
        },
        scope=session_scope(session),
    )


def session_create(
    *,
    agent: Agent,
    user_id: str,
    owner: AbstractBaseUser,
    config: timeouts.TimeoutConfig,
    context: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    actor: Principal | None = None,
) -> Session:
    """`owner` owns the session. `actor`, the caller when it is not a trusted one: its
    `user_id` (the messages' sender) may not name another local principal."""
    if actor is not None:
        sender_check(principal=actor, sender_id=user_id)
    if agent.status != Agent.Status.RUNNING:
        raise AgentNotRunning(details={"agent_id": str(agent.agent_id), "status": agent.status})
    now = timezone.now()
    with transaction.atomic():
        # The external participant is the session's user only within this channel; the
        # owner principal is a member too, to read the conversation (REST and WebSocket).
        channel = channel_create(
            name=f"session {user_id}"[:100],
            type="direct",
            members=[f"agent:{agent.agent_id}", {"member_id": user_id, "member_type": "external"}],
            actor=owner,
            creator_member=True,
        )
        session = Session(
            agent=agent,
            agent_uuid=agent.agent_id,
            user_id=user_id,
            owner=owner,
            channel=channel,
            context=context or {},
            metadata=metadata or {},
            created_at=now,
            last_activity=now,
        )
        _set_config(session, config)
        _set_expiry(session, now)
        session.save()
        session_emit(session, event="created", context_changed=session.context)
    return session


def _mark_expired(session: Session, now: datetime) -> bool:
    """Expire an active session that is due; True if this call did it (and emitted)."""
    with transaction.atomic():
        updated = Session.objects.filter(
            pk=session.pk, status=Session.Status.ACTIVE, expires_at__lte=now
        ).update(status=Session.Status.EXPIRED, expired_at=now)
        if updated:
            session.status, session.expired_at = Session.Status.EXPIRED, now
            session_emit(session, event="expired", expired_at=now)
    return bool(updated)


def session_expire_if_due(session: Session, *, now: datetime | None = None) -> Session:
    """Lazy expiry without refusing: an active session past its `expires_at` is marked
    expired (once, with its event) and returned as it now is. Reads use it; actions use
    session_ensure_live."""
    now = now or timezone.now()
    if session.status == Session.Status.ACTIVE and session.expires_at <= now:
        _mark_expired(session, now)
        session.refresh_from_db(fields=["status", "expired_at"])
    return session


def session_ensure_live(session: Session, *, now: datetime | None = None) -> datetime:
    """Raise SessionExpired (410) or SessionEnded (409) unless the session is active; expire
    it first if it is due. Returns the `now` used."""
    now = now or timezone.now()
    session_expire_if_due(session, now=now)
    if session.status == Session.Status.EXPIRED:
        raise SessionExpired(details={"session_id": str(session.session_id)})
    if session.status == Session.Status.ENDED:
        raise SessionEnded(details={"session_id": str(session.session_id)})
    return now


def session_heartbeat(*, session: Session) -> Session:
    """The hot path: one conditional UPDATE, no event (nothing a watcher sees changes)."""
    now = session_ensure_live(session)
    session.last_activity = now
    if session.auto_renew and timeouts.can_renew(
        created_at=session.created_at, config=session_config(session), now=now
    ):
        session.renewal_count += 1
    _set_expiry(session, now)
    updated = Session.objects.filter(pk=session.pk, status=Session.Status.ACTIVE).update(
        last_activity=now,
        renewal_count=session.renewal_count,
        expires_at=session.expires_at,
        warn_at=session.warn_at,
    )
    if not updated:  # ended or expired by someone else meanwhile
        session.refresh_from_db()
        session_ensure_live(session)
    return session


@dataclass(frozen=True)
class Renewal:
    session: Session
    was_renewed: bool


@transaction.atomic
def session_renew_locked(session: Session, now: datetime, *, explicit: bool) -> Renewal:
    """Renew (or just touch) the active session as of `now`, under its row lock; SessionEnded
    or SessionExpired when it is no longer active."""
    locked = Session.objects.select_for_update().get(pk=session.pk)
    if locked.status != Session.Status.ACTIVE:
        raise SessionEnded() if locked.status == Session.Status.ENDED else SessionExpired()
    config = session_config(locked)
    if not timeouts.can_renew(created_at=locked.created_at, config=config, now=now):
        if explicit:
            raise SessionRenewalLimit(details={"max_duration_minutes": locked.max_duration_minutes})
        return Renewal(locked, False)
    if not explicit and not locked.auto_renew:
        locked.last_activity = now
        locked.save(update_fields=["last_activity"])
        return Renewal(locked, False)
    locked.last_activity = now
    locked.renewal_count += 1
    _set_expiry(locked, now, renewing=explicit)
    locked.save(update_fields=["last_activity", "renewal_count", "expires_at", "warn_at"])
    if explicit:
        session_emit(locked, event="renewed", renewal_count=locked.renewal_count)
    return Renewal(locked, True)


def session_renew(*, session: Session) -> Session:
    """Explicit renewal (renews even with autoRenew off); past max duration → limit error."""
    now = session_ensure_live(session)
    return session_renew_locked(session, now, explicit=True).session


def session_update_timeout(*, session: Session, config: timeouts.TimeoutConfig) -> Session:
    now = session_ensure_live(session)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        _set_config(locked, config)
        _set_expiry(locked, now)
        locked.save()
        session_emit(locked, event="timeout_updated", timeoutConfig=config.as_api())
    return locked


def session_conversation(session: Session, *, with_context: bool = True) -> list[ChatMessage]:
    """The session's recent messages as chat turns, after its context as a system note."""
    context = session.context if with_context else {}
    recent = reversed(
        Message.objects.filter(channel_id=session.channel_id)
        .order_by("-sent_at", "-message_id")
        .only("sender_type", "content")[:_CONTEXT_MESSAGES]
    )
    turns = [
        ChatMessage(role="assistant" if m.sender_type == "agent" else "user", content=m.content)
        for m in recent
    ]
    if context:
        note = f"Session context: {json.dumps(context, default=str)[:2000]}"
        turns.insert(0, ChatMessage(role="system", content=note))
    return turns


def _factual_summary(session: Session) -> str:
    messages = Message.objects.filter(channel_id=session.channel_id)
    users = messages.filter(sender_type="user").count()
    agents = messages.filter(sender_type="agent").count()
    name = session.agent.name if session.agent else str(session.agent_uuid)
    topic = session.context.get("last_topic")
    summary = (
        f"Session between {name} and user {session.user_id}: {users} user message(s) and "
        f"{agents} agent repl{'y' if agents == 1 else 'ies'} from "
        f"{session.created_at:%Y-%m-%d %H:%M} to {timezone.now():%Y-%m-%d %H:%M} UTC."
    )
    return f"{summary} Last topic: {topic}." if topic else summary


def _summary(session: Session) -> str:
    """Written by the agent's model from the conversation; the offline builtin responder
    cannot summarise, so its sessions (and failed calls) get a plain factual summary."""
    agent = session.agent
    if agent is None or agent.status != Agent.Status.RUNNING:
        return _factual_summary(session)
    ask = ChatMessage(role="user", content="Summarise this conversation in two or three sentences.")
    try:
        conversation = [*session_conversation(session, with_context=False), ask]
        completion = agent_complete(agent=agent, conversation=conversation)
    except (AgentBudgetExceeded, AgentRuntimeError):
        return _factual_summary(session)
    return completion.text if completion.provider != "builtin" else _factual_summary(session)


def session_end(*, session: Session) -> Session:
    """End the session with a summary. The summary (an agent call, up to the provider's
    timeouts) is written before the transaction opens: no provider is waited on while the
    database is held."""
    now = session_ensure_live(session)
    summary = _summary(session)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if locked.status != Session.Status.ACTIVE:
            raise SessionEnded() if locked.status == Session.Status.ENDED else SessionExpired()
        locked.status = Session.Status.ENDED
        locked.ended_at = now
        locked.summary = summary
        locked.save(update_fields=["status", "ended_at", "summary"])
        session_emit(locked, event="ended", ended_at=now, summary=summary)
    return locked
