"""State-changing WebSocket commands: the REST API's checks around the same services.

Synchronous (ORM and Redis); the consumer runs them through `database_sync_to_async`.
"""

import uuid
from typing import Any

from django.contrib.auth import get_user_model

from messaging.exceptions import ChannelNotFound
from messaging.models import Channel, Message
from messaging.services import message_post
from system.kernel.exceptions import PermissionDeniedError
from system.kernel.ratelimit import rate_limit_hit
from system.kernel.roles import ADMIN
from system.realtime.access import SEND_MESSAGES, Grants
from system.realtime.auth import Principal


def _channel_visible(*, principal: Principal, channel_id: Any) -> Channel:
    """messaging.selectors.channel_get_visible for a principal that is not a DRF request:
    `channel_not_found` alike for channels that do not exist and those it may not see."""
    try:
        pk = uuid.UUID(str(channel_id))
    except ValueError:
        raise ChannelNotFound() from None
    channel = Channel.objects.filter(pk=pk).first()
    if channel is None:
        raise ChannelNotFound()
    if (
        ADMIN in principal.roles
        or channel.type == Channel.Type.PUBLIC
        or channel.members.filter(member_id=principal.username).exists()
    ):
        return channel
    raise ChannelNotFound()


def message_send(
    *, principal: Principal, grants: Grants, channel_id: Any, content: Any, metadata: Any
) -> Message:
    """`send_message`: as POST /api/v1/channels/{id}/messages (policy, the principal's
    per-minute rate limit, channel visibility, message_post), sent as the principal itself."""
    if not grants.send_messages:
        raise PermissionDeniedError(
            details={"action": SEND_MESSAGES, "required_roles": sorted(grants.send_messages_roles)}
        )
    rate_limit_hit(principal.label, grants.rate_limit)
    channel = _channel_visible(principal=principal, channel_id=channel_id)
    return message_post(
        channel=channel,
        sender_id=principal.username,
        content=content,
        metadata=metadata,
        actor_roles=principal.roles,
        actor=get_user_model().objects.get(pk=principal.user_id),
        as_user=True,
    )
