"""How a session looks in each API: the spec's snake_case objects and ElizaOS's SessionInfo."""

from datetime import datetime
from typing import Any

from django.utils import timezone

from messaging.models import Message
from sessions_app import timeouts
from sessions_app.models import Session
from sessions_app.services import session_config
from system.kernel.timefmt import iso_z, iso_z_or_none


def v1_created(session: Session) -> dict[str, Any]:
    return {
        "session_id": str(session.session_id),
        "agent_id": str(session.agent_uuid),
        "user_id": session.user_id,
        "created_at": iso_z(session.created_at),
        "expires_at": iso_z(session.expires_at),
        "status": session.status,
        "timeoutConfig": session_config(session).as_api(),
    }


def v1_session(session: Session, *, message_count: int) -> dict[str, Any]:
    return {
        **v1_created(session),
        "context": session.context,
        "metadata": session.metadata,
        "message_count": message_count,
        "last_activity": iso_z(session.last_activity),
        "renewal_count": session.renewal_count,
        "ended_at": iso_z_or_none(session.ended_at),
        "summary": session.summary,
    }


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def eliza_session(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    config = session_config(session)
    return {
        "sessionId": str(session.session_id),
        "channelId": str(session.channel_id),
        "agentId": str(session.agent_uuid),
        "userId": session.user_id,
        "createdAt": session.created_at.isoformat(),
        "lastActivity": session.last_activity.isoformat(),
        "metadata": session.metadata,
        "expiresAt": session.expires_at.isoformat(),
        "timeoutConfig": config.as_api(),
        "renewalCount": session.renewal_count,
        "timeRemaining": timeouts.time_remaining_ms(expires=session.expires_at, now=now),
        "isNearExpiration": timeouts.is_near_expiration(
            expires=session.expires_at, config=config, now=now
        ),
    }


def eliza_created(session: Session) -> dict[str, Any]:
    info = eliza_session(session)
    keys = ("sessionId", "channelId", "agentId", "userId", "createdAt", "metadata", "expiresAt")
    return {**{k: info[k] for k in keys}, "timeoutConfig": info["timeoutConfig"]}


def eliza_message(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.message_id),
        "content": message.content,
        "authorId": message.sender_id,
        "isAgent": message.sender_type == Message.SenderType.AGENT,
        "createdAt": message.sent_at.isoformat(),
        "metadata": message.metadata,
    }


def eliza_session_status(session: Session, *, was_renewed: bool) -> dict[str, Any]:
    info = eliza_session(session)
    return {
        "expiresAt": info["expiresAt"],
        "renewalCount": info["renewalCount"],
        "wasRenewed": was_renewed,
        "isNearExpiration": info["isNearExpiration"],
    }
