"""The consumer's side of `system.kernel.sockets`: messages that reach sockets on every ws
process through Channels' channel layer.

A connection joins its principal's groups (its user's, its API key's) once it is
authenticated, and, unless it is an admin's (who sees every channel), the channel-access group.
`principal.recheck` re-checks its credentials at once (the consumer closes it with 4401 when
they no longer hold); `channel.access.changed` makes this process forget what it cached about
a channel's visibility, so the next event of that channel is checked against the database.
"""

import logging
from typing import Any

from system.kernel.principal import Principal
from system.kernel.sockets import CHANNEL_ACCESS_GROUP, principal_groups
from system.realtime.access import channel_directory

logger = logging.getLogger(__name__)


class ControlMixin:
    """For an AsyncConsumer with a channel layer; the consumer provides `async recheck()`
    (close with 4401 when the credentials no longer hold, else take the current grants)."""

    control_groups: tuple[str, ...] = ()

    async def control_join(self, principal: Principal) -> None:
        groups = principal_groups(user_id=principal.user_id, api_key_id=principal.api_key_id)
        if not principal.is_admin:
            groups.append(CHANNEL_ACCESS_GROUP)
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:  # noqa: BLE001 - the periodic re-check still holds
            logger.warning("channel layer unavailable (%s: %s)", type(exc).__name__, exc)
        self.control_groups = tuple(groups)

    async def control_leave(self) -> None:
        groups, self.control_groups = self.control_groups, ()
        try:
            for group in groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:  # noqa: BLE001 - nothing more to do for a closing socket
            logger.warning("channel layer unavailable (%s: %s)", type(exc).__name__, exc)

    async def principal_recheck(self, message: dict[str, Any]) -> None:
        await self.recheck()

    async def channel_access_changed(self, message: dict[str, Any]) -> None:
        channel_directory().forget(message["channel_id"])
