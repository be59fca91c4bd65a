"""ElizaOS's `POST /api/messaging/sessions/{id}/messages` (`@elizaos/server` 1.7.2, its sessions
router and response handlers): the body's checks, the shapes it answers with (the user's
message as a message-bus record, the agent's reply as a Content object) and the `sse`
transport's stream. Our own keys stay alongside ElizaOS's: extra keys are harmless to its
clients, and ours may rely on them."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import StreamingHttpResponse

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent
from agents.runtime import Completion
from agents.services import agent_stream
from messaging.bus import bus_record
from messaging.models import Message
from messaging.services import agent_reply_record, message_emit
from sessions_app import representations, services
from sessions_app.exchange import Exchange
from sessions_app.models import Session
from system.kernel.exceptions import ValidationFailed

MAX_CONTENT = 4000
MAX_METADATA_CHARS = 10_240
TRANSPORTS = ("websocket", "http", "sse")


@dataclass(frozen=True)
class MessageRequest:
    transport: str
    content: str
    metadata: dict[str, Any]  # as stored: the request's, its attachments, the sessionId


def message_request_parse(body: dict[str, Any], *, session: Session) -> MessageRequest:
    """ElizaOS's checks (400 VALIDATION_ERROR). Attachments are kept in the stored metadata,
    within the one size limit they share with the request's metadata."""
    transport = body.get("transport", "websocket")
    if transport not in TRANSPORTS:
        raise ValidationFailed(f"Invalid transport; use one of {', '.join(TRANSPORTS)}")
    content = body.get("content")
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
        raise ValidationFailed(
            f"Content must be a non-empty string of at most {MAX_CONTENT} characters"
        )
    metadata = body.get("metadata") or {}
    attachments = body.get("attachments") or []
    if (
        not isinstance(metadata, dict)
        or not isinstance(attachments, list)
        or len(json.dumps([metadata, attachments], default=str)) > MAX_METADATA_CHARS
    ):
        raise ValidationFailed(
            "Metadata (an object) and attachments (a list) must be under "
            f"{MAX_METADATA_CHARS} characters together"
        )
    # sessionId last: a client's metadata cannot place its message in another session.
    stored = {**metadata, **({"attachments": attachments} if attachments else {})}
    return MessageRequest(transport, content, {**stored, "sessionId": str(session.session_id)})


def user_message(message: Message) -> dict[str, Any]:
    """ElizaOS's `userMessage`: the message-bus record (with our message keys)."""
    return {**representations.eliza_message(message), **bus_record(message)}


def agent_content(message: Message) -> dict[str, Any]:
    """ElizaOS's `agentResponse` and SSE `done`: the agent's Content object (`text`, ...)."""
    return {
        **representations.eliza_message(message),
        "text": message.content,
        "inReplyTo": str(message.in_reply_to_id) if message.in_reply_to_id else None,
    }


def message_answer(exchange: Exchange, *, with_reply: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "success": True,
        "userMessage": user_message(exchange.user_message),
        "sessionStatus": representations.eliza_session_status(
            exchange.session, was_renewed=exchange.renewal.was_renewed
        ),
    }
    if with_reply:
        answer["agentResponse"] = agent_content(exchange.reply) if exchange.reply else None
    return answer


def session_reply_store(
    *, message: Message, agent: Agent, content: str, message_id: uuid.UUID
) -> Message | None:
    """A session agent's answer to `message`, given after session_message (a stream): stored
    as `message_id` (the id its chunks announced) and emitted; no agent is asked to answer it.
    None if the agent had already answered. The stream is read with no transaction open; this
    short one only stores its end."""
    with transaction.atomic():
        answer = agent_reply_record(
            message=message, agent=agent, content=content, message_id=message_id
        )
        if answer is not None:
            message_emit(answer)
    return answer


def _events(exchange: Exchange) -> Iterator[bytes]:
    agent = exchange.session.agent
    yield _sse("user_message", user_message(exchange.user_message))
    reply_id = uuid.uuid4()
    try:
        conversation = services.session_conversation(exchange.session)
        for index, item in enumerate(agent_stream(agent=agent, conversation=conversation)):
            if not isinstance(item, Completion):
                yield _sse("chunk", {"messageId": str(reply_id), "chunk": item, "index": index})
                continue
            reply = session_reply_store(
                message=exchange.user_message, agent=agent, content=item.text, message_id=reply_id
            )
            content = agent_content(reply) if reply else {"id": str(reply_id), "text": item.text}
            yield _sse("done", {**content, "messageId": str(reply_id), "message": content})
    except (AgentBudgetExceeded, AgentRuntimeError) as exc:
        yield _sse("error", {"error": exc.message, "code": exc.code, "message": exc.message})


def message_stream(exchange: Exchange) -> StreamingHttpResponse:
    """`user_message`, then `chunk`s whose `messageId` is the id of the reply that `done`
    describes: the reply is stored under that id (with its ledger rows) when it completes."""
    response = StreamingHttpResponse(_events(exchange), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()
