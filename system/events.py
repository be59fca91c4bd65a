"""Live delivery of event-log entries through the channel layer.

Every entry goes to the `events` group (admins' firehose) and to one group per scope column it
carries (`events.agent.<uuid>`, `events.channel.<uuid>`, `events.session.<uuid>`,
`events.owner.<user id>`). A consumer in several groups can receive an entry more than once:
it deduplicates by `event_id`. The live path may drop messages; the log never does.
"""

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

FIREHOSE_GROUP = "events"
# The consumer method that receives an entry: `event.deliver` → `event_deliver`.
DISPATCH_TYPE = "event.deliver"


@dataclass(frozen=True)
class EventScope:
    """Who an event concerns; each field set adds a group and an index to filter on."""

    agent_id: UUID | None = None
    channel_id: UUID | None = None
    session_id: UUID | None = None
    owner_id: int | None = None


def scope_groups(scope: EventScope) -> list[str]:
    groups = [FIREHOSE_GROUP]
    if scope.agent_id:
        groups.append(f"events.agent.{scope.agent_id}")
    if scope.channel_id:
        groups.append(f"events.channel.{scope.channel_id}")
    if scope.session_id:
        groups.append(f"events.session.{scope.session_id}")
    if scope.owner_id is not None:
        groups.append(f"events.owner.{scope.owner_id}")
    return groups


async def _group_send_all(layer: Any, message: dict[str, Any], groups: list[str]) -> None:
    for group in groups:
        await layer.group_send(group, message)


def publish(message: dict[str, Any], groups: list[str]) -> None:
    """Send one event to its groups. Failure is logged, never raised: the caller's transaction
    has already committed and the entry is safe in the log for clients to resume from."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # One trip into the event loop for all the groups: from a WSGI or Celery thread each
        # async_to_sync call costs a new loop (and a new Redis connection in channels-redis).
        async_to_sync(_group_send_all)(layer, {"type": DISPATCH_TYPE, **message}, groups)
    except Exception as exc:  # noqa: BLE001 - any transport error: the log still has it
        logger.warning(
            "live publish of event %s failed (%s); clients resume from the log",
            message.get("event_id"),
            type(exc).__name__,
        )
