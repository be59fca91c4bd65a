"""Live delivery of event-log entries: one Redis pub/sub message per batch of committed entries.

Every entry concerns the `events` group (admins' firehose) and one group per scope column it
carries (`events.agent.<uuid>`, `events.channel.<uuid>`, `events.session.<uuid>`,
`events.owner.<user id>`). After commit, `publish_many` sends the entries' ids with their
groups on ONE pub/sub channel (WS_EVENTS_CHANNEL), up to PUBLISH_CHUNK entries per message and
all the messages of a call pipelined in one round trip. Each ws process holds one subscription
to that channel (system.realtime.hub) and wakes only its own connections that joined one of
those groups; a connection then delivers from the event log, which is the truth: the live path
may drop (pub/sub does, while a ws process is disconnected from Redis), the log never does.

Wire format (JSON): `[[event_id, [group, ...]], ...]`, ids ascending.
"""

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

logger = logging.getLogger(__name__)

FIREHOSE_GROUP = "events"
# Every event type the platform's services log (their *_EVENT constants; meetings log
# workflow_update): what a WebSocket subscription or a webhook endpoint may name.
EVENT_TYPES = frozenset(
    {
        "agent_status_update",
        "agent_budget_exceeded",
        "new_message",
        "session_update",
        "workflow_update",
    }
)
# Entries per pub/sub message: a session sweep publishes up to 100,000 at once.
PUBLISH_CHUNK = 500


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


def events_channel() -> str:
    """The pub/sub channel of this deployment's live events. Pub/sub is not scoped by Redis DB
    number, so the default name carries it (settings.WS_EVENTS_CHANNEL)."""
    return settings.WS_EVENTS_CHANNEL


def encode(items: Sequence[tuple[int, Sequence[str]]]) -> str:
    return json.dumps(
        [[event_id, list(groups)] for event_id, groups in items], separators=(",", ":")
    )


def decode(raw: str | bytes) -> list[tuple[int, list[str]]]:
    """The entries of one message; anything malformed is skipped (the log still has it)."""
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    decoded = []
    if isinstance(items, list):
        for item in items:
            if (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], int)
                and isinstance(item[1], list)
            ):
                decoded.append((item[0], item[1]))
    return decoded


def publish_many(items: Iterable[tuple[int, Sequence[str]]]) -> None:
    """Publish committed entries `(event_id, groups)`, in id order, in one round trip. Failure is
    logged, never raised: the caller's transaction has already committed and the entries are
    safe in the log (connections find them at their next wake-up or periodic sync)."""
    items = list(items)
    if not items:
        return
    # Imported here: system.redis_client reads settings, and this module is imported early.
    from system.kernel.redis_client import get_redis

    channel = events_channel()
    try:
        pipe = get_redis().pipeline(transaction=False)
        for start in range(0, len(items), PUBLISH_CHUNK):
            pipe.publish(channel, encode(items[start : start + PUBLISH_CHUNK]))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - any transport error: the log still has it
        logger.warning(
            "live publish of events %s..%s failed (%s); clients resume from the log",
            items[0][0],
            items[-1][0],
            type(exc).__name__,
        )
