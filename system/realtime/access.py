"""Which logged events a principal may see: the REST API's rules, applied to event scopes.

- Session events (scope `session_id`/`owner_id`): the session's owner (user pk == owner_id)
  and admins: sessions_app.selectors.session_visible_to.
- Channel events (`channel_id`): principals whose roles may read messages (the policy's
  `channels.messages.list`) and who see the channel: messaging.selectors.channel_visible_to,
  the rule the REST API's channels_visible applies in SQL.
- Agent events (`agent_id`): principals whose roles may read agents (`agents.read`: admin,
  agent_manager, messaging, system_monitor).
- Anything else (no scope): admins only.

Checking a delivery never queries the database per connection: roles are resolved against the
policy when the connection authenticates and on every credential re-check, and channel
visibility comes from a per-process directory of channels (type and members) shared by all
connections, refreshed after WS_AUTH_RECHECK_SECONDS and forgotten at once when a channel's
members change (system.realtime.control).
"""

import asyncio
import time
import weakref
from dataclasses import dataclass

from django.db.models import Q

from messaging.selectors import ChannelAudience, channel_audience
from sessions_app.selectors import session_visible_to
from system.kernel.policy import get_policy
from system.kernel.principal import Principal
from system.realtime.db import db_call
from system.realtime.log import LoggedEvent

READ_AGENTS = "agents.read"
READ_MESSAGES = "channels.messages.list"
SEND_MESSAGES = "channels.messages.send"


@dataclass(frozen=True)
class Grants:
    """What the principal's roles allow, resolved against the access policy."""

    read_agents: bool
    read_messages: bool
    send_messages: bool
    send_messages_roles: frozenset[str]
    rate_limit: int


def grants_for(principal: Principal) -> Grants:
    policy = get_policy()

    def allowed(action: str) -> bool:
        rule = policy.actions.get(action)
        return rule is not None and (rule.public or bool(principal.roles & rule.roles))

    send_rule = policy.actions.get(SEND_MESSAGES)
    return Grants(
        read_agents=allowed(READ_AGENTS),
        read_messages=allowed(READ_MESSAGES),
        send_messages=allowed(SEND_MESSAGES),
        send_messages_roles=send_rule.roles if send_rule else frozenset(),
        rate_limit=policy.limit_for(principal.roles),
    )


class ChannelDirectory:
    """Type and members of the channels this process's connections deliver events of
    (messaging.selectors.channel_audience), cached for `ttl` seconds; concurrent lookups of one
    channel share one query."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, ChannelAudience | None]] = {}
        self._pending: dict[str, asyncio.Future] = {}

    def peek(self, channel_id: str, *, ttl: float) -> tuple[bool, ChannelAudience | None]:
        """(True, the cached answer) when one younger than `ttl` is at hand; (False, None)
        when only `get` can tell."""
        cached = self._cache.get(channel_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return True, cached[1]
        return False, None

    async def get(self, channel_id: str, *, ttl: float) -> ChannelAudience | None:
        cached = self._cache.get(channel_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        pending = self._pending.get(channel_id)
        if pending is not None:
            await asyncio.wait([pending])  # never raises, and a cancelled waiter stays cancelled
            if not pending.cancelled() and pending.exception() is None:
                return pending.result()
        future = asyncio.get_running_loop().create_future()
        self._pending[channel_id] = future
        try:
            access = await db_call(channel_audience)(channel_id=channel_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters query for themselves
            raise
        finally:
            # Not ours any more when `forget` ran meanwhile: the answer may predate the change.
            current = self._pending.get(channel_id) is future
            if current:
                del self._pending[channel_id]
        if current:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[channel_id] = (time.monotonic(), access)
        future.set_result(access)
        return access

    def forget(self, channel_id: str) -> None:
        """The channel's members or type changed (system.realtime.control): the next lookup
        queries, and a lookup already in flight does not fill the cache."""
        self._cache.pop(channel_id, None)
        self._pending.pop(channel_id, None)


_directories: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChannelDirectory]" = (
    weakref.WeakKeyDictionary()
)


def channel_directory() -> ChannelDirectory:
    loop = asyncio.get_running_loop()
    directory = _directories.get(loop)
    if directory is None:
        directory = _directories[loop] = ChannelDirectory()
    return directory


class Access:
    """One connection's view: its principal, grants, and the shared channel directory."""

    def __init__(self, principal: Principal, grants: Grants, *, ttl: float) -> None:
        self.principal = principal
        self.grants = grants
        self.ttl = ttl
        # This event loop's directory, found at the first channel lookup.
        self.directory: ChannelDirectory | None = None

    async def channel_visible(self, channel_id: str, *, fresh: bool = False) -> bool:
        if not self.grants.read_messages:
            return False
        if self.directory is None:
            self.directory = channel_directory()
        access = await self.directory.get(channel_id, ttl=0.0 if fresh else self.ttl)
        return access is not None and access.visible_to(self.principal)

    def visible_now(self, entry: LoggedEvent) -> bool | None:
        """`visible` from memory, without awaiting: None when it needs the channel directory
        to look a channel up (then await `visible`). The live path's per-connection check."""
        principal = self.principal
        if principal.is_admin:
            return True
        if entry.session_id is not None or entry.owner_id is not None:
            return session_visible_to(principal=principal, owner_id=entry.owner_id)
        if entry.channel_id is not None:
            if not self.grants.read_messages:
                return False
            if self.directory is None:
                return None
            known, access = self.directory.peek(entry.channel_id, ttl=self.ttl)
            if not known:
                return None
            return access is not None and access.visible_to(principal)
        if entry.agent_id is not None:
            return self.grants.read_agents
        return False

    async def visible(self, entry: LoggedEvent) -> bool:
        known = self.visible_now(entry)
        if known is not None:
            return known
        assert entry.channel_id is not None  # only a channel lookup is left undecided
        return await self.channel_visible(entry.channel_id)

    def log_filter(self) -> Q | None:
        """A superset of `visible` in SQL, to narrow replays (None: no restriction)."""
        if self.principal.is_admin:
            return None
        unowned = Q(owner_id__isnull=True, session_id__isnull=True)
        # session_visible_to over the log's own scope column (the owner's user id).
        allowed = Q(owner_id=self.principal.user_id)
        if self.grants.read_messages:
            # Residual SQL: every channel event, not only those of visible channels. `visible`
            # decides each one with channel_visible_to from the directory's cached audience; a
            # join to the current memberships could disagree with that cached answer, and would
            # cost a membership join per replay.
            allowed |= unowned & Q(channel_id__isnull=False)
        if self.grants.read_agents:
            allowed |= unowned & Q(channel_id__isnull=True, agent_id__isnull=False)
        return allowed
