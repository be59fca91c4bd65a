"""State-changing WebSocket commands: the REST API's checks around the same services.

Synchronous (ORM and Redis); the consumer runs them through `system.realtime.db.db_call`.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from messaging.selectors import channel_get_visible
from messaging.services import message_post_as_principal
from system.kernel.exceptions import PermissionDeniedError
from system.kernel.principal import Principal
from system.kernel.ratelimit import rate_limit_hit
from system.realtime.access import SEND_MESSAGES, Grants


@dataclass(frozen=True)
class MessageSent:
    """What the `ack` of a `send_message` names: the message and its channel."""

    message_id: uuid.UUID
    channel_id: uuid.UUID


def message_send(
    *, principal: Principal, grants: Grants, channel_id: Any, content: Any, metadata: Any
) -> MessageSent:
    """`send_message`: as POST /api/v1/channels/{id}/messages (policy, the principal's
    per-minute rate limit, channel visibility, message posting), sent as the principal itself.
    A channel that does not exist and one the principal may not see are both
    `channel_not_found`."""
    if not grants.send_messages:
        raise PermissionDeniedError(
            details={"action": SEND_MESSAGES, "required_roles": sorted(grants.send_messages_roles)}
        )
    rate_limit_hit(principal.id, grants.rate_limit)
    channel = channel_get_visible(principal=principal, channel_id=channel_id)
    message = message_post_as_principal(
        principal=principal, channel=channel, content=content, metadata=metadata
    )
    return MessageSent(message_id=message.message_id, channel_id=message.channel_id)
