"""ElizaOS's message-bus record of a message (`@elizaos/server` 1.7.2): the shape its sessions
answer with and its clients read from the live broadcast, so REST and live answers read alike.

A message belongs to an ElizaOS-style conversation when its metadata names a `sessionId`; an
agent's reply inherits that key from the message it answers (CONVERSATION_KEYS)."""

from datetime import datetime
from typing import Any

from messaging.models import Message

# ElizaOS's default message server: its clients send and expect this id when they name none.
DEFAULT_SERVER_ID = "00000000-0000-0000-0000-000000000000"
CONVERSATION_KEYS = ("sessionId",)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def in_conversation(message: Message) -> bool:
    return any(key in message.metadata for key in CONVERSATION_KEYS)


def reply_metadata(question: Message) -> dict[str, Any]:
    """The metadata an agent's reply to `question` starts with: its conversation keys."""
    return {key: question.metadata[key] for key in CONVERSATION_KEYS if key in question.metadata}


def bus_record(message: Message) -> dict[str, Any]:
    is_agent = message.sender_type == Message.SenderType.AGENT
    raw = message.raw_message
    if raw is None:
        raw = {"content": message.content, "attachments": message.metadata.get("attachments", [])}
    return {
        "id": str(message.message_id),
        "channel_id": str(message.channel_id),
        "message_server_id": str(message.metadata.get("message_server_id", DEFAULT_SERVER_ID)),
        "author_id": message.sender_id,
        "content": message.content,
        "created_at": epoch_ms(message.sent_at),
        "source_type": message.source_type or ("agent_response" if is_agent else "user"),
        "raw_message": raw,
        "metadata": message.metadata,
        "in_reply_to_message_id": (
            str(message.in_reply_to_id) if message.in_reply_to_id is not None else None
        ),
    }
