"""Which agents answer a message, and the bounds on what that may cost.

Agents answer agents only in channels with `agent_replies_enabled` (a setting only admin and
agent_manager turn on, never a message's metadata), at most MAX_AGENT_HOPS deep. One user
message causes at most AGENT_REPLY_FANOUT_MAX agent replies in all, counting the whole tree
(agents answering agents included), however many agents are members.

The count lives in Redis, one counter per original message, claimed with INCRBY before the
reply tasks are enqueued: atomic across processes, so concurrent replies that each ask for
more cannot pass the cap together. A slot claimed for a reply that then does not happen (agent
stopped, budget spent) is not given back: the cap errs on the side of fewer calls. Without
Redis a user's message is still answered (its replies wait in the outbox until the broker is
back) and agents answering agents wait for the counter (reply_slots_claim).
"""

import logging
import uuid
from typing import Any

import redis
from django.conf import settings

from agents.models import Agent
from messaging.models import ChannelMember, Message
from system.kernel.exceptions import PermissionDeniedError, ValidationFailed
from system.kernel.principal import Principal
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

MAX_AGENT_HOPS = 3
_TTL_SECONDS = 24 * 3600


def channel_agent_replies_check(*, enabled: Any, principal: Principal | None) -> bool:
    """Agents answering agents multiplies LLM calls: only admin and agent_manager turn it on
    (403 insufficient_permissions otherwise); None is a trusted caller."""
    if not isinstance(enabled, bool):
        raise ValidationFailed(details={"agent_replies_enabled": ["Must be true or false."]})
    if enabled and principal is not None and not principal.roles & {"admin", "agent_manager"}:
        raise PermissionDeniedError(
            "Turning on agent-to-agent replies needs the admin or agent_manager role.",
            details={
                "action": "channels.agent_replies.enable",
                "required_roles": ["admin", "agent_manager"],
            },
        )
    return enabled


def agents_to_answer(message: Message) -> list[uuid.UUID]:
    """Running agent members other than the sender, oldest agent first; for an agent's
    message only in a channel with agent_replies_enabled (a channel setting, never the
    message's metadata) and when fewer than MAX_AGENT_HOPS hops were made."""
    if message.sender_type == Message.SenderType.AGENT and not (
        message.channel.agent_replies_enabled and message.reply_depth < MAX_AGENT_HOPS
    ):
        return []
    member_ids = message.channel.members.filter(member_type=ChannelMember.Type.AGENT).values_list(
        "member_id", flat=True
    )
    return list(
        Agent.objects.filter(agent_id__in=list(member_ids), status=Agent.Status.RUNNING)
        .exclude(agent_id=message.sender_id if message.sender_type == "agent" else None)
        .order_by("created_at", "agent_id")
        .values_list("agent_id", flat=True)
    )


def thread_root_id(message: Message) -> uuid.UUID:
    """The user message an agent reply (chain) answers: at most MAX_AGENT_HOPS reads."""
    while message.sender_type == Message.SenderType.AGENT and message.in_reply_to_id:
        parent = (
            Message.objects.filter(pk=message.in_reply_to_id)
            .only("message_id", "sender_type", "in_reply_to_id")
            .first()
        )
        if parent is None:
            break
        message = parent
    return message.message_id


def reply_slots_claim(*, message: Message, wanted: int) -> int:
    """Claim up to `wanted` agent replies from the budget of `message`'s original message;
    returns how many were granted (0 when the cap is reached).

    Without Redis, a user's message (a thread's root) is still granted up to the cap: it
    opens the count, so nothing was counted before it. Agent messages deeper in the thread
    are then granted nothing: they find no counter and start it at the cap (`SET NX`), so the
    whole thread stays within the cap whichever way Redis came and went."""
    if wanted <= 0:
        return 0
    cap = settings.AGENT_REPLY_FANOUT_MAX
    is_root = message.sender_type != Message.SenderType.AGENT
    key = f"371os:fanout:{thread_root_id(message)}"
    try:
        pipe = get_redis().pipeline(transaction=True)
        if not is_root:
            pipe.set(key, cap, nx=True, ex=_TTL_SECONDS)
        pipe.incrby(key, wanted)
        pipe.expire(key, _TTL_SECONDS)
        claimed = pipe.execute()[-2]
    except redis.RedisError as exc:
        granted = min(wanted, cap) if is_root else 0
        logger.warning(
            "reply counter unavailable (%s): %d agent replies to %s",
            type(exc).__name__,
            granted,
            message.pk,
        )
        return granted
    return max(0, min(wanted, cap - (claimed - wanted)))
