"""The `subscribe` command: an event type (or `*`) and a filter, matched in Python against
live entries and in SQL against the log for replays; the two must agree."""

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from agents.selectors import agent_get
from sessions_app.selectors import session_owned_by
from system.eventlog.events import EVENT_TYPES, FIREHOSE_GROUP
from system.kernel.exceptions import DomainError, PermissionDeniedError
from system.kernel.principal import Principal
from system.realtime.access import Access
from system.realtime.db import db_call
from system.realtime.log import LoggedEvent

ANY_EVENT = "*"
# The spec's short names (its example subscribes to "agent_status").
ALIASES = {
    "agent_status": "agent_status_update",
    "message": "new_message",
    "session": "session_update",
}
AGENT_EVENTS = frozenset({"agent_status_update", "agent_budget_exceeded"})
CHANNEL_EVENTS = frozenset({"new_message"})
SESSION_EVENTS = frozenset({"session_update"})
# EVENT_TYPES (system.eventlog.events): a subscription to any other name would never receive
# anything.
ID_FILTERS = ("agent_id", "channel_id", "session_id")
FILTERS = (*ID_FILTERS, "status")
# Agents may be named where an id is asked for, as in the REST API (agents.selectors.agent_get).
_AGENT_NAME_MAX = 255


class InvalidCommand(DomainError):
    code = "invalid_command"
    message = "The command is not valid."


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    event_type: str
    agent_id: str | None = None
    channel_id: str | None = None
    session_id: str | None = None
    status: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "event_type": self.event_type,
            "filter": {
                name: getattr(self, name) for name in FILTERS if getattr(self, name) is not None
            },
        }

    def matches(self, entry: LoggedEvent) -> bool:
        return (
            (self.event_type == ANY_EVENT or entry.event_type == self.event_type)
            and (self.agent_id is None or entry.agent_id == self.agent_id)
            and (self.channel_id is None or entry.channel_id == self.channel_id)
            and (self.session_id is None or entry.session_id == self.session_id)
            and (
                self.status is None
                or (isinstance(entry.payload, dict) and entry.payload.get("status") == self.status)
            )
        )

    def where(self) -> Q:
        """`matches` in SQL."""
        where = Q()
        if self.event_type != ANY_EVENT:
            where &= Q(event_type=self.event_type)
        for name in ID_FILTERS:
            if getattr(self, name) is not None:
                where &= Q(**{name: getattr(self, name)})
        if self.status is not None:
            where &= Q(payload__status=self.status)
        return where

    def scope(self, principal: Principal) -> tuple[str, str | int] | None:
        """The one scope every matching entry is in, most specific first; None when matching
        entries may be anywhere. Decides the hub group and the window index."""
        if self.session_id is not None:
            return ("session", self.session_id)
        if self.channel_id is not None:
            return ("channel", self.channel_id)
        if self.agent_id is not None:
            return ("agent", self.agent_id)
        if self.event_type in SESSION_EVENTS and not principal.is_admin:
            return ("owner", principal.user_id)  # the only sessions it may see: its own
        return None

    def group(self, principal: Principal) -> str:
        scope = self.scope(principal)
        return f"events.{scope[0]}.{scope[1]}" if scope else FIREHOSE_GROUP


def subscription_parse(*, subscription_id: str, command: dict[str, Any]) -> Subscription:
    event_type = command.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidCommand(
            "subscribe needs an event_type.", details={"event_type": ["Required string."]}
        )
    event_type = ALIASES.get(event_type, event_type)
    if event_type != ANY_EVENT and event_type not in EVENT_TYPES:
        valid = [*sorted(EVENT_TYPES), *ALIASES, ANY_EVENT]
        raise InvalidCommand(
            f"Unknown event_type {command['event_type'][:64]!r}; valid: {', '.join(valid)}.",
            details={"event_type": [f"One of {valid}."], "valid_event_types": valid},
        )
    raw_filter = command.get("filter") or {}
    if not isinstance(raw_filter, dict):
        raise InvalidCommand(details={"filter": ["Must be an object."]})
    unknown = sorted(set(raw_filter) - set(FILTERS))
    if unknown:
        raise InvalidCommand(
            details={"filter": [f"Unknown keys {unknown}; allowed: {list(FILTERS)}."]}
        )
    values: dict[str, str] = {}
    for name in ID_FILTERS:
        raw = raw_filter.get(name)
        if raw is None:
            continue
        try:
            values[name] = str(uuid.UUID(str(raw)))
        except ValueError:
            if name != "agent_id":
                raise InvalidCommand(details={f"filter.{name}": ["Must be a UUID."]}) from None
            if not isinstance(raw, str) or not 1 <= len(raw) <= _AGENT_NAME_MAX:
                message = f"An agent's UUID or name (1 to {_AGENT_NAME_MAX} characters)."
                raise InvalidCommand(details={"filter.agent_id": [message]}) from None
            values[name] = raw  # a name: subscription_resolve makes it the agent's id
    status = raw_filter.get("status")
    if status is not None:
        if not isinstance(status, str) or not 1 <= len(status) <= 64:
            raise InvalidCommand(details={"filter.status": ["A string of 1 to 64 characters."]})
        values["status"] = status
    return Subscription(subscription_id=subscription_id, event_type=event_type, **values)


def _denied(reason: str, **details: Any) -> PermissionDeniedError:
    return PermissionDeniedError(f"Not allowed to subscribe: {reason}", details=details)


async def subscription_authorize(subscription: Subscription, access: Access) -> None:
    """Refuse what the principal can never see; delivery checks every event again anyway.
    Channels and sessions that do not exist are refused like those of others."""
    grants, principal = access.grants, access.principal
    if principal.is_admin:
        return
    if subscription.event_type in AGENT_EVENTS and not grants.read_agents:
        raise _denied("agent events need a role that may read agents.", action="agents.read")
    if subscription.event_type in CHANNEL_EVENTS and not grants.read_messages:
        raise _denied(
            "message events need a role that may read messages.",
            action="channels.messages.list",
        )
    if subscription.agent_id is not None and not grants.read_agents:
        raise _denied("agent events need a role that may read agents.", action="agents.read")
    if subscription.channel_id is not None and not await access.channel_visible(
        subscription.channel_id, fresh=True
    ):
        raise _denied("no access to this channel.", channel_id=subscription.channel_id)
    if subscription.session_id is not None and not await db_call(session_owned_by)(
        principal=principal, session_id=uuid.UUID(subscription.session_id)
    ):
        raise _denied("only the session's owner may watch it.", session_id=subscription.session_id)


def _agent_id_by_ref(ref: str) -> str:
    return str(agent_get(ref=ref).agent_id)


async def subscription_resolve(subscription: Subscription) -> Subscription:
    """The subscription with an agent named in its filter given by id (AgentNotFound, a 404,
    when no agent has that name). Call after subscription_authorize, so that a principal
    that may not read agents learns nothing about their names."""
    agent_ref = subscription.agent_id
    if agent_ref is None or _is_uuid(agent_ref):
        return subscription
    return dataclasses.replace(subscription, agent_id=await db_call(_agent_id_by_ref)(agent_ref))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
