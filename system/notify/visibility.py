"""Which logged events an endpoint may receive: those its principal may see, by the same rules
as the REST API and the WebSocket.

An endpoint acts as the principal that made it: its API key (built as authentication builds a
key's principal, so the key's effective roles bound what it receives; a revoked or expired
key, or an inactive owner, receives nothing), else its owner user with the user's roles.

The rules are system.realtime.access's (`Access.visible_now` and `grants_for`), copied here
because notify may not import realtime; keep both in step:
- admins see everything;
- session events (scope `session_id`/`owner_id`): sessions_app.selectors.session_visible_to;
- channel events: the policy's `channels.messages.list` and the channel's audience
  (messaging.selectors.channel_audience(...).visible_to), looked up once per channel per
  dispatch run (`ChannelAudiences`);
- agent events: the policy's `agents.read`;
- anything else (no scope): admins only.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messaging.selectors import ChannelAudience, channel_audience
from sessions_app.selectors import session_visible_to
from system.kernel.policy import get_policy
from system.kernel.principal import Principal, principal_for_api_key, principal_for_user
from system.models import WebhookEndpoint

READ_AGENTS = "agents.read"
READ_MESSAGES = "channels.messages.list"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event-log entry as the dispatcher reads it, scope ids as strings."""

    event_id: int
    event_type: str
    payload: Any
    created_at: datetime
    agent_id: str | None
    channel_id: str | None
    session_id: str | None
    owner_id: int | None

    @classmethod
    def from_row(cls, row: tuple) -> "LogEntry":
        event_id, event_type, payload, created_at, agent_id, channel_id, session_id, owner = row
        return cls(
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            created_at=created_at,
            agent_id=str(agent_id) if agent_id else None,
            channel_id=str(channel_id) if channel_id else None,
            session_id=str(session_id) if session_id else None,
            owner_id=owner,
        )


def endpoint_principal(endpoint: WebhookEndpoint, *, now: datetime) -> Principal | None:
    """Who the endpoint receives as; None when that principal may see nothing now (its key
    revoked or expired, its user inactive). Load `api_key__owner`, `api_key__created_by` and
    `owner` with the endpoint."""
    key = endpoint.api_key
    if key is not None:
        if not key.is_usable(now) or not key.owner.is_active:
            return None
        return principal_for_api_key(key)
    if not endpoint.owner.is_active:
        return None
    return principal_for_user(endpoint.owner)


def _allowed(principal: Principal, action: str) -> bool:
    # system.realtime.access.grants_for's rule.
    rule = get_policy().actions.get(action)
    return rule is not None and (rule.public or bool(principal.roles & rule.roles))


class ChannelAudiences:
    """channel_audience per channel, queried at most once per instance (one dispatch run)."""

    def __init__(self) -> None:
        self._cache: dict[str, ChannelAudience | None] = {}

    def get(self, channel_id: str) -> ChannelAudience | None:
        if channel_id not in self._cache:
            self._cache[channel_id] = channel_audience(channel_id=channel_id)
        return self._cache[channel_id]


class Viewer:
    """A principal with its grants resolved once (per dispatch run)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.read_agents = _allowed(principal, READ_AGENTS)
        self.read_messages = _allowed(principal, READ_MESSAGES)


def event_visible(
    principal: Principal | Viewer, entry: LogEntry, *, channels: ChannelAudiences | None = None
) -> bool:
    """Whether the principal may see the entry (system.realtime.access.Access.visible_now)."""
    viewer = principal if isinstance(principal, Viewer) else Viewer(principal)
    who = viewer.principal
    if who.is_admin:
        return True
    if entry.session_id is not None or entry.owner_id is not None:
        return session_visible_to(principal=who, owner_id=entry.owner_id)
    if entry.channel_id is not None:
        if not viewer.read_messages:
            return False
        audience = (channels or ChannelAudiences()).get(entry.channel_id)
        return audience is not None and audience.visible_to(who)
    if entry.agent_id is not None:
        return viewer.read_agents
    return False
