"""Agent replies, run by the Celery worker. Idempotent: a redelivered task finds the reply
already stored (one reply per agent per message is a database constraint) and stops.

The reply task sits on the path a user waits on (message committed → reply on their socket), so
it makes few round trips: the message, whether this agent already answered it and its channel
in one query, the agent in another, the conversation in a third. Nobody reads its result, so it
stores none: a result would cost a SUBSCRIBE in the posting process before every enqueue (the
Redis result backend listens for the result of every task sent), and a SET and a PUBLISH after
every reply.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent
from agents.runtime import ChatMessage
from agents.services import agent_complete
from messaging.models import Message
from messaging.services import agent_reply_store

logger = logging.getLogger(__name__)


def conversation_for(*, message: Message, agent: Agent) -> list[ChatMessage]:
    """The channel's last MESSAGING_CONTEXT_MESSAGES messages up to `message`, as the agent
    sees them: its own messages as assistant turns, everyone else's as user turns."""
    recent = (
        Message.objects.filter(channel_id=message.channel_id, sent_at__lte=message.sent_at)
        .order_by("-sent_at", "-message_id")
        .only("sender_id", "sender_type", "content")[: settings.MESSAGING_CONTEXT_MESSAGES]
    )
    own_id = str(agent.agent_id)
    turns = []
    for item in reversed(recent):
        if item.sender_id == own_id:
            turns.append(ChatMessage(role="assistant", content=item.content))
        else:
            turns.append(ChatMessage(role="user", content=f"{item.sender_id}: {item.content}"))
    return turns


@shared_task(name="messaging.agent_reply", ignore_result=True)
def agent_reply(message_id: str, agent_id: str) -> str:
    answered = Message.objects.filter(in_reply_to=OuterRef("pk"), sender_id=agent_id)
    message = (
        Message.objects.select_related("channel")
        .annotate(answered=Exists(answered))
        .filter(pk=message_id)
        .first()
    )
    agent = Agent.objects.filter(pk=agent_id).first()
    if message is None or agent is None:
        return "gone"
    if agent.status != Agent.Status.RUNNING:
        return "agent not running"
    if message.answered:
        return "already answered"
    try:
        completion = agent_complete(
            agent=agent, conversation=conversation_for(message=message, agent=agent)
        )
    except (AgentBudgetExceeded, AgentRuntimeError) as exc:
        # Recorded in the ledger (and the event log for budgets); no reply is stored.
        logger.warning("agent %s did not answer message %s: %s", agent.name, message_id, exc.code)
        return exc.code
    reply = agent_reply_store(message=message, agent=agent, content=completion.text)
    return "answered" if reply is not None else "already answered"
