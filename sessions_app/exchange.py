"""A message to a session and its agent's answer: session_message.

No transaction is open while a provider answers. Transaction A records the user's message and
its event and commits; the provider is then called with no transaction (an answer can take
every candidate's timeout in turn, minutes); transaction B stores the answer and its events.
On SQLite a transaction holds the database-wide write lock, on PostgreSQL a connection: neither
may wait on a provider.

What the row lock used to guarantee, one answer at a time per session and in order, is kept
by a lease on the session row (`reply_lease_until`), taken in transaction A by one conditional
UPDATE and given back in transaction B (or, whatever happens, in a `finally`). The lease runs
out on its own after the longest an answer can take, so a process that dies while its agent
answers blocks its session for at most that long. A message that finds the lease taken polls
for it a short while, then is refused with 409 `session_busy` and Retry-After.
"""

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, AgentNotRunning, AgentRuntimeError
from agents.models import Agent
from agents.runtime import Completion, RoutingConfigError, get_router
from agents.services import agent_complete
from messaging.models import Message
from messaging.services import (
    agent_reply_record,
    message_emit,
    message_record,
    message_replies_request,
)
from messaging.validation import validate_content, validate_metadata
from sessions_app.exceptions import SessionBusy, SessionEnded, SessionExpired
from sessions_app.models import Session
from sessions_app.services import (
    Renewal,
    session_conversation,
    session_emit,
    session_ensure_live,
    session_renew_locked,
)
from system.kernel.timefmt import iso_z

# How long a message waits for its session's lease before 409 session_busy (overridable with
# settings.SESSION_REPLY_WAIT_SECONDS). Short, because the waiting request holds a web
# worker thread; long enough that an answer just finishing (the builtin responder, a fast
# model) lets the next message through without a client round trip.
REPLY_WAIT_SECONDS = 2.0
_POLL_SECONDS = 0.1
# Retry-After of session_busy, at most: the lease's end is the worst case (every provider
# timing out), while a typical answer takes seconds: told to wait minutes, a client would
# wait far longer than it needs.
BUSY_RETRY_SECONDS = 5
# Beyond the providers' timeouts: the budget reservation and ledger writes around the call.
LEASE_MARGIN_SECONDS = 30
# When the routing file cannot be read: the shipped file's two 60 s providers.
_FALLBACK_PROVIDER_SECONDS = 2 * 60


@dataclass(frozen=True)
class Exchange:
    session: Session
    user_message: Message
    reply: Message | None
    context_update: dict[str, Any]
    renewal: Renewal


def reply_lease_seconds(agent: Agent | None) -> float:
    """The longest a synchronous answer of `agent` can take: the router tries its model's
    candidates one after the other, each up to its provider's timeout (for an unknown model,
    the longest of any)."""
    try:
        config = get_router().config
    except RoutingConfigError:
        return _FALLBACK_PROVIDER_SECONDS + LEASE_MARGIN_SECONDS
    worst = {
        alias: sum(config.providers[c.provider].timeout_seconds for c in candidates)
        for alias, candidates in config.models.items()
    }
    longest = max(worst.values(), default=_FALLBACK_PROVIDER_SECONDS)
    model = agent.config.get("model") if agent is not None else None
    return worst.get(model, longest) + LEASE_MARGIN_SECONDS


def _topic(content: str) -> str:
    words = re.findall(r"[A-Za-z0-9][\w'-]*", content)
    return " ".join(words[:8])


def _lease_claim(session: Session, *, until: datetime | None) -> bool:
    """One conditional UPDATE: the lease is ours (`until`) if it is free. `until` None only
    checks that it is free (a message whose answer comes later, from elsewhere)."""
    now = timezone.now()
    free = Q(reply_lease_until__isnull=True) | Q(reply_lease_until__lt=now)
    rows = Session.objects.filter(free, pk=session.pk, status=Session.Status.ACTIVE)
    if until is None:
        return rows.exists()  # a read: no row version written for every such message
    return bool(rows.update(reply_lease_until=until))


def _lease_release(session: Session, *, until: datetime | None) -> None:
    """Give the lease back if it is still ours (it may have run out and been taken since)."""
    Session.objects.filter(pk=session.pk, reply_lease_until=until).update(reply_lease_until=None)


def _wait_for_lease(session: Session, *, deadline: float) -> None:
    """After a refused claim: raise if the session is gone or the wait is over, else pause."""
    row = Session.objects.filter(pk=session.pk).values("status", "reply_lease_until").get()
    if row["status"] == Session.Status.ENDED:
        raise SessionEnded(details={"session_id": str(session.session_id)})
    if row["status"] == Session.Status.EXPIRED:
        raise SessionExpired(details={"session_id": str(session.session_id)})
    left = deadline - time.monotonic()
    if left <= 0:
        error = SessionBusy(details={"session_id": str(session.session_id)})
        until = row["reply_lease_until"]
        held = (until - timezone.now()).total_seconds() if until else 0
        error.headers = {"Retry-After": str(max(1, min(BUSY_RETRY_SECONDS, math.ceil(held))))}
        raise error
    time.sleep(min(_POLL_SECONDS, left))


def _context_and_renewal(
    locked: Session, *, content: str, now: datetime
) -> tuple[Session, dict[str, Any], Renewal]:
    """Call inside the transaction that holds the session row lock."""
    turns = Message.objects.filter(channel_id=locked.channel_id, sender_type="user").count()
    context_update = {
        "turn_count": turns,
        "last_topic": _topic(content),
        "last_message_at": iso_z(now),
    }
    locked.context = {**locked.context, **context_update}
    locked.save(update_fields=["context"])
    renewal = session_renew_locked(locked, now, explicit=False)
    return renewal.session, context_update, renewal


def _locked(session: Session) -> Session:
    return (
        Session.objects.select_related("agent", "channel")
        .select_for_update(of=("self",))
        .get(pk=session.pk)
    )


def _record(
    session: Session, *, content: str, metadata: Any, reply: str, now: datetime
) -> tuple[Session, Message, Exchange | None]:
    """Transaction A's work, under the lease: the user's message and its event. A message
    answered elsewhere ("worker", "caller") is complete here: its Exchange is returned."""
    locked = _locked(session)
    if locked.status != Session.Status.ACTIVE:
        raise SessionEnded() if locked.status == Session.Status.ENDED else SessionExpired()
    agent = locked.agent
    if agent is None or agent.status != Agent.Status.RUNNING:
        raise AgentNotRunning(details={"agent_id": str(locked.agent_uuid)})
    user_message = message_record(
        channel=locked.channel,
        sender_id=locked.user_id,
        content=content,
        metadata=metadata,
        posted_by_id=locked.owner_id,
    )
    if reply == "worker":
        message_replies_request(user_message)
    if reply == "now":
        message_emit(user_message)
        return locked, user_message, None
    locked, context_update, renewal = _context_and_renewal(locked, content=content, now=now)
    message_emit(user_message)
    session_emit(
        locked, event="message", context_changed=context_update, context_update=context_update
    )
    return locked, user_message, Exchange(locked, user_message, None, context_update, renewal)


def _answer(
    session: Session,
    *,
    agent: Agent,
    user_message: Message,
    completion: Completion | None,
    content: str,
    now: datetime,
    lease: datetime | None,
) -> Exchange:
    """Transaction B: the answer (if any), the context and renewal, their events; the lease
    given back. A session ended or expired while its agent answered keeps the answer, the
    user having asked while it was live, but is neither renewed nor touched."""
    with transaction.atomic():
        locked = _locked(session)
        answer = None
        if completion is not None:
            answer = agent_reply_record(message=user_message, agent=agent, content=completion.text)
        _lease_release(locked, until=lease)
        if locked.status == Session.Status.ACTIVE:
            locked, context_update, renewal = _context_and_renewal(locked, content=content, now=now)
        else:
            context_update, renewal = {}, Renewal(locked, False)
        if answer is not None:
            message_emit(answer)
        if locked.status == Session.Status.ACTIVE:
            session_emit(
                locked,
                event="message",
                context_changed=context_update,
                context_update=context_update,
            )
    return Exchange(locked, user_message, answer, context_update, renewal)


def session_message(
    *,
    session: Session,
    content: Any,
    metadata: Any = None,
    reply: str = "now",
) -> Exchange:
    """Store the user's message. `reply`: "now" asks the agent synchronously and stores its
    answer; "worker" lets the agent answer through the Celery worker; "caller" leaves it to
    the caller (a stream). Call with no transaction open: "now" calls a provider, which must
    not happen inside one (see the module's docstring).

    Messages to one session are taken one at a time: while an agent answers ("now"), others
    wait up to REPLY_WAIT_SECONDS, then SessionBusy (409, Retry-After).

    A runtime failure (budget, providers) keeps the user's message and the usage ledger and
    re-raises after commit; no partial reply is stored.
    """
    content = validate_content(content)
    metadata = validate_metadata(metadata)
    now = session_ensure_live(session)
    wait = getattr(settings, "SESSION_REPLY_WAIT_SECONDS", REPLY_WAIT_SECONDS)
    deadline = time.monotonic() + wait
    while True:
        lease = None
        if reply == "now":
            lease = timezone.now() + timedelta(seconds=reply_lease_seconds(session.agent))
        with transaction.atomic():
            if _lease_claim(session, until=lease):
                locked, user_message, done = _record(
                    session, content=content, metadata=metadata, reply=reply, now=now
                )
                break
        _wait_for_lease(session, deadline=deadline)
    if done is not None:
        return done
    agent = locked.agent  # running: _record checked it
    released = False
    try:
        failure: Exception | None = None
        completion = None
        try:
            completion = agent_complete(agent=agent, conversation=session_conversation(locked))
        except (AgentBudgetExceeded, AgentRuntimeError) as exc:
            failure = exc
        exchange = _answer(
            locked,
            agent=agent,
            user_message=user_message,
            completion=completion,
            content=content,
            now=now,
            lease=lease,
        )
        released = True
    finally:
        if not released:
            _lease_release(locked, until=lease)
    if failure is not None:
        raise failure
    return exchange
