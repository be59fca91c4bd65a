"""The data every scenario needs, made through the services and kept between runs.

Runs inside the harness process (Django set up on the bench database). Each step looks at
what exists and creates only what is missing, so the second run of `make bench` reuses the
first one's data. Everything is made by the services the API uses (agent_create, channel_create,
session_create, message_post, api_key_create) except the bulk paths named in bench/README.md:
history messages beyond `service_message_limit` and the agent's usage-ledger rows.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Agent, UsageRecord
from agents.services import agent_create, agent_start
from bench.params import Params
from messaging.models import Channel, Message
from messaging.services import channel_create, message_post_internal
from sessions_app import timeouts
from sessions_app.models import Session
from sessions_app.services import session_create
from system.auth import services as system_services
from system.models import ApiKey, EventLogEntry

OWNER = "bench"
KEY_NAME_PREFIX = "bench run"
# Long-lived sessions (24 h without activity, 48 h at most) so that the pool outlives a run
# and the next run reuses it; the timeouts do not change the cost of any request measured.
SESSION_TIMEOUT = {"timeoutMinutes": 1440, "maxDurationMinutes": 2880, "autoRenew": True}
SESSION_MIN_REMAINING = timedelta(hours=2)
BULK_BATCH = 10_000


@dataclass
class Fixture:
    api_key: str
    owner_id: int
    session_agent: str  # UUID of the agent the live sessions talk to
    reader_agent: str  # UUID of the agent GET /api/v1/agents/{id} reads
    replier_agent: str  # UUID of the running agent in the post and e2e channels
    post_channel: str
    e2e_channel: str
    fanout_channel: str
    resume_channel: str
    history_small_channel: str
    history_large_channel: str
    sessions_file: Path
    resume_from: int  # replay events after this id ...
    resume_expected: int  # ... this many of them


def _say(message: str) -> None:
    print(f"  data: {message}", flush=True)


def _owner():
    user, created = get_user_model().objects.get_or_create(username=OWNER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _api_key(owner) -> str:
    """A fresh messaging key per run; the previous runs' keys are revoked."""
    for old in ApiKey.objects.filter(
        owner=owner, revoked_at__isnull=True, name__startswith=KEY_NAME_PREFIX
    ):
        system_services.api_key_revoke(api_key=old)
    _, key = system_services.api_key_create(
        name=f"{KEY_NAME_PREFIX} {timezone.now():%Y-%m-%d %H:%M:%S}",
        owner=owner,
        roles=["messaging"],
    )
    return key


def _running_agent(name: str, agent_type: str, owner) -> Agent:
    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        agent = agent_create(name=name, type=agent_type, actor=owner)
    if agent.status != Agent.Status.RUNNING:
        agent = agent_start(agent=agent)
    return agent


def _channel(name: str, owner, members: list[str]) -> Channel:
    channel = Channel.objects.filter(name=name, type=Channel.Type.PUBLIC).first()
    if channel is None:
        channel = channel_create(name=name, type="public", members=members, actor=owner)
    return channel


def _usage_rows(agent: Agent, wanted: int) -> None:
    """Bulk path: ledger rows as the runtime writes them, without calling a provider."""
    have = UsageRecord.objects.filter(agent=agent).count()
    if have >= wanted:
        return
    now = timezone.now()
    UsageRecord.objects.bulk_create(
        UsageRecord(
            agent=agent,
            agent_uuid=agent.agent_id,
            request_id=uuid.uuid4(),
            provider="builtin" if i % 10 else "openai",
            model="builtin-responder" if i % 10 else "gpt-4o",
            prompt_tokens=120,
            completion_tokens=80,
            cost_usd=Decimal("0") if i % 10 else Decimal("0.0011"),
            latency_ms=2.0 + i % 50,
            success=i % 25 != 0,
            error_code="" if i % 25 else "timeout",
            created_at=now - timedelta(minutes=i),
        )
        for i in range(have, wanted)
    )
    _say(f"{wanted - have} usage-ledger rows for {agent.name} (bulk)")


def _live_sessions(params: Params, owner, agent: Agent, ids_dir: Path) -> Path:
    config = timeouts.validate(SESSION_TIMEOUT, base=timeouts.defaults())
    live = Session.objects.filter(
        owner=owner,
        agent=agent,
        status=Session.Status.ACTIVE,
        expires_at__gt=timezone.now() + SESSION_MIN_REMAINING,
    )
    have = live.count()
    missing = params.live_sessions - have
    if missing > 0:
        started = time.monotonic()
        for i in range(missing):
            session_create(
                agent=agent,
                user_id=f"bench-user-{uuid.uuid4()}",
                owner=owner,
                config=config,
                context={"source": "make bench"},
            )
            if (i + 1) % 2000 == 0:
                _say(f"{i + 1}/{missing} sessions created")
        _say(f"{missing} live sessions created ({time.monotonic() - started:.0f}s)")
    ids = [str(pk) for pk in live.order_by("created_at").values_list("pk", flat=True)]
    path = ids_dir / "sessions.txt"
    path.write_text("\n".join(ids[: params.live_sessions]) + "\n")
    return path


def _history(channel: Channel, wanted: int, limit: int) -> None:
    """`wanted` messages in the channel: through message_post up to `limit`, bulk beyond."""
    have = Message.objects.filter(channel=channel).count()
    if have >= wanted:
        return
    started = time.monotonic()
    if wanted <= limit:
        for i in range(have, wanted):
            message_post_internal(
                channel=channel,
                sender_id=f"bench-user-{i % 100}",
                content=f"History message {i}: the quarterly plan, item {i % 37}.",
            )
        _say(f"{wanted - have} messages posted to {channel.name} through message_post")
        return
    base = channel.created_at - timedelta(days=30)
    step = timedelta(days=30) / wanted
    for start in range(have, wanted, BULK_BATCH):
        end = min(start + BULK_BATCH, wanted)
        with transaction.atomic():
            Message.objects.bulk_create(
                Message(
                    channel=channel,
                    sender_id=f"bench-user-{i % 100}",
                    sender_type=Message.SenderType.USER,
                    content=f"History message {i}: the quarterly plan, item {i % 37}.",
                    sent_at=base + step * i,
                )
                for i in range(start, end)
            )
        if (end // BULK_BATCH) % 10 == 0:
            _say(f"{end}/{wanted} messages in {channel.name} (bulk)")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
    _say(
        f"{wanted - have} messages bulk-created in {channel.name} "
        f"({time.monotonic() - started:.0f}s)"
    )


def _resume_events(channel: Channel, wanted: int) -> tuple[int, int]:
    """At least `wanted` new_message events of the channel in the event log (posted through
    message_post); returns (replay after this id, how many events follow it)."""
    events = EventLogEntry.objects.filter(channel_id=channel.channel_id, event_type="new_message")
    have = events.count()
    if have < wanted:
        started = time.monotonic()
        for i in range(have, wanted):
            message_post_internal(
                channel=channel,
                sender_id=f"bench-user-{i % 100}",
                content=f"Missed message {i}.",
            )
        _say(
            f"{wanted - have} messages posted to {channel.name} for the resume scenario "
            f"({time.monotonic() - started:.0f}s)"
        )
    first = events.order_by("event_id").values_list("event_id", flat=True).first()
    return first - 1, events.count()


def prepare(params: Params, ids_dir: Path) -> Fixture:
    ids_dir.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    key = _api_key(owner)
    session_agent = _running_agent("bench-session-agent", "cto_alex", owner)
    reader = _running_agent("bench-reader", "cfo_cash", owner)
    replier = _running_agent("bench-replier", "ceo_mimi", owner)
    _usage_rows(reader, params.agent_usage_rows)
    post = _channel("bench-post", owner, [replier.name])
    e2e = _channel("bench-e2e", owner, [replier.name])
    fanout = _channel("bench-fanout", owner, [])
    resume = _channel(f"bench-resume-{params.resume_events}", owner, [])
    small = _channel(f"bench-history-{params.history_small}", owner, [])
    large = _channel(f"bench-history-{params.history_large}", owner, [])
    sessions_file = _live_sessions(params, owner, session_agent, ids_dir)
    _history(small, params.history_small, params.service_message_limit)
    _history(large, params.history_large, params.service_message_limit)
    resume_from, resume_expected = _resume_events(resume, params.resume_events)
    return Fixture(
        api_key=key,
        owner_id=owner.pk,
        session_agent=str(session_agent.agent_id),
        reader_agent=str(reader.agent_id),
        replier_agent=str(replier.agent_id),
        post_channel=str(post.channel_id),
        e2e_channel=str(e2e.channel_id),
        fanout_channel=str(fanout.channel_id),
        resume_channel=str(resume.channel_id),
        history_small_channel=str(small.channel_id),
        history_large_channel=str(large.channel_id),
        sessions_file=sessions_file,
        resume_from=resume_from,
        resume_expected=resume_expected,
    )
