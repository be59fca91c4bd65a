"""Data of the scenarios the yardstick added (bench/README.md): the 32-writers channels and a
session with a history, made like bench/data.py's (services first, kept between runs).

Runs inside the harness process, after bench.data.prepare (Django set up on the bench
database).
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from bench.data import SESSION_MIN_REMAINING, SESSION_TIMEOUT, _channel, _owner, _say
from bench.params import Params
from messaging.models import Message
from sessions_app import timeouts
from sessions_app.models import Session
from sessions_app.services import session_create

HISTORY_SESSION_USER = "bench-history-eliza"
HISTORY_SESSION_MESSAGES = 60  # GET .../messages?limit=50 reads a full page


@dataclass
class YardstickFixture:
    writer_channels: list[str]  # public channels without agents, one per concurrent writer
    writers_file: Path  # their ids, one a line
    history_session: str  # a live session whose channel holds HISTORY_SESSION_MESSAGES


def _writer_channels(count: int, owner, ids_dir: Path) -> tuple[list[str], Path]:
    ids = [str(_channel(f"bench-writer-{i}", owner, []).channel_id) for i in range(count)]
    path = ids_dir / "writers.txt"
    path.write_text("\n".join(ids) + "\n")
    return ids, path


def _history_session(owner, agent: Agent) -> str:
    """A live session of the reader agent (not in the live-sessions pool: another agent) whose
    channel holds HISTORY_SESSION_MESSAGES messages, user and agent alternately. Bulk path:
    the history endpoint reads only the message rows."""
    session = (
        Session.objects.filter(
            owner=owner,
            agent=agent,
            user_id=HISTORY_SESSION_USER,
            status=Session.Status.ACTIVE,
            expires_at__gt=timezone.now() + SESSION_MIN_REMAINING,
        )
        .order_by("-created_at")
        .first()
    )
    if session is None:
        session = session_create(
            agent=agent,
            user_id=HISTORY_SESSION_USER,
            owner=owner,
            config=timeouts.validate(SESSION_TIMEOUT, base=timeouts.defaults()),
            context={"source": "make bench"},
        )
    have = Message.objects.filter(channel_id=session.channel_id).count()
    if have < HISTORY_SESSION_MESSAGES:
        base = timezone.now() - timedelta(hours=1)
        with transaction.atomic():
            Message.objects.bulk_create(
                Message(
                    message_id=uuid.uuid4(),
                    channel_id=session.channel_id,
                    sender_id=HISTORY_SESSION_USER if i % 2 == 0 else agent.name,
                    sender_type=(
                        Message.SenderType.USER if i % 2 == 0 else Message.SenderType.AGENT
                    ),
                    content=f"Session history message {i}: the quarterly plan, item {i % 37}.",
                    sent_at=base + timedelta(seconds=i),
                )
                for i in range(have, HISTORY_SESSION_MESSAGES)
            )
        _say(f"{HISTORY_SESSION_MESSAGES - have} messages in the history session (bulk)")
    return str(session.session_id)


def prepare_yardstick(params: Params, ids_dir: Path, reader_agent: str) -> YardstickFixture:
    owner = _owner()
    channels, path = _writer_channels(params.writers, owner, ids_dir)
    reader = Agent.objects.get(agent_id=reader_agent)
    return YardstickFixture(
        writer_channels=channels,
        writers_file=path,
        history_session=_history_session(owner, reader),
    )
