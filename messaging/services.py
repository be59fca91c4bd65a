"""Channels, membership and messages: every change goes through here (REST, ElizaOS submit,
admin and the agent-reply task alike)."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent
from messaging.exceptions import MessageNotEditable
from messaging.models import Channel, ChannelMember, Message
from messaging.validation import MAX_CONTENT, validate_content, validate_metadata
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.caching import resource_version_bump
from system.kernel.exceptions import PermissionDeniedError, ValidationFailed
from system.kernel.principal import Principal
from system.kernel.sockets import sockets_channel_access_changed

MAX_NAME = 100
MAX_MEMBER_ID = 255
MAX_MEMBERS = 1000
# Agents answer other agents only when asked (metadata), and at most this many hops deep.
ALLOW_AGENT_REPLIES = "allow_agent_replies"
MAX_AGENT_HOPS = 3
NEW_MESSAGE_EVENT = "new_message"


@dataclass(frozen=True)
class MemberRef:
    member_id: str
    member_type: str


def messages_resource(channel_id: uuid.UUID | str) -> str:
    return f"channel:{channel_id}:messages"


def _agents_by_ref(refs: list[str]) -> dict[str, Agent]:
    """Agents named by UUID or by name, keyed by the reference used."""
    ids, names = set(), set()
    for ref in refs:
        try:
            ids.add(uuid.UUID(ref))
        except ValueError:
            names.add(ref)
    found: dict[str, Agent] = {}
    for agent in Agent.objects.filter(agent_id__in=ids) | Agent.objects.filter(name__in=names):
        found[str(agent.agent_id)] = found[agent.name] = agent
    return {ref: found[ref] for ref in refs if ref in found}


def resolve_members(raw: Any, *, field: str = "members") -> list[MemberRef]:
    """Members as strings (an agent's UUID or name, else a user id), `agent:<ref>` /
    `user:<id>`, or objects {member_id, member_type}. An explicit agent that does not exist is
    a 400 naming it."""
    if not isinstance(raw, list):
        raise ValidationFailed(details={field: ["Must be a list."]})
    if len(raw) > MAX_MEMBERS:
        raise ValidationFailed(details={field: [f"At most {MAX_MEMBERS} members."]})
    wanted: list[tuple[str, str | None]] = []
    for item in raw:
        if isinstance(item, dict):
            ref, kind = item.get("member_id"), item.get("member_type")
        elif isinstance(item, str) and item.split(":", 1)[0] in ("agent", "user") and ":" in item:
            kind, ref = item.split(":", 1)
        else:
            ref, kind = item, None
        if (
            not isinstance(ref, str)
            or not 1 <= len(ref) <= MAX_MEMBER_ID
            or kind not in (None, "agent", "user")
        ):
            raise ValidationFailed(
                details={
                    field: [
                        "Each member is an agent id or name, or a user id of 1 to "
                        f"{MAX_MEMBER_ID} characters."
                    ]
                }
            )
        wanted.append((ref, kind))
    agents = _agents_by_ref([ref for ref, kind in wanted if kind != "user"])
    unknown = [ref for ref, kind in wanted if kind == "agent" and ref not in agents]
    if unknown:
        raise ValidationFailed(
            f"Unknown agent: {', '.join(unknown)}.",
            details={field: [f"Unknown agent: {r}" for r in unknown]},
        )
    members: dict[str, MemberRef] = {}
    for ref, _kind in wanted:
        agent = agents.get(ref) if _kind != "user" else None
        member = MemberRef(str(agent.agent_id), "agent") if agent else MemberRef(ref, "user")
        members.setdefault(member.member_id, member)
    return list(members.values())


def channel_create(*, name: Any, type: Any, members: Any, actor: AbstractBaseUser) -> Channel:
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        errors["name"] = [f"1 to {MAX_NAME} characters."]
    if type not in Channel.Type.values:
        errors["type"] = [f"One of: {', '.join(Channel.Type.values)}."]
    if members is None and type in (Channel.Type.PRIVATE, Channel.Type.DIRECT):
        errors["members"] = ["Required for private and direct channels."]
    if errors:
        raise ValidationFailed(details=errors)
    resolved = resolve_members(members or [])
    if type == Channel.Type.DIRECT and len(resolved) != 2:
        raise ValidationFailed(details={"members": ["A direct channel has exactly two members."]})
    if type == Channel.Type.PRIVATE:
        creator = MemberRef(actor.get_username(), "user")
        if creator.member_id not in {m.member_id for m in resolved}:
            resolved.append(creator)
    with transaction.atomic():
        channel = Channel.objects.create(name=name.strip(), type=type, created_by=actor)
        ChannelMember.objects.bulk_create(
            ChannelMember(channel=channel, member_id=m.member_id, member_type=m.member_type)
            for m in resolved
        )
    return channel


def _members_changed(channel: Channel) -> None:
    # Who may read the history changed: no old ETag may be honoured, and open sockets stop
    # (or start) delivering its events within a second.
    resource_version_bump(messages_resource(channel.channel_id), f"channel:{channel.channel_id}")
    sockets_channel_access_changed(channel_id=channel.channel_id)


def channel_members_add(*, channel: Channel, members: Any) -> Channel:
    if channel.type == Channel.Type.DIRECT:
        raise ValidationFailed(details={"members": ["A direct channel's members cannot change."]})
    resolved = resolve_members(members)
    with transaction.atomic():
        ChannelMember.objects.bulk_create(
            [
                ChannelMember(channel=channel, member_id=m.member_id, member_type=m.member_type)
                for m in resolved
            ],
            ignore_conflicts=True,
        )
        _members_changed(channel)
    return channel


def channel_members_remove(*, channel: Channel, members: Any) -> Channel:
    if channel.type == Channel.Type.DIRECT:
        raise ValidationFailed(details={"members": ["A direct channel's members cannot change."]})
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValidationFailed(details={"members": ["A list of member ids or agent names."]})
    agents = _agents_by_ref(members)
    ids = {str(agents[m].agent_id) if m in agents else m for m in members}
    with transaction.atomic():
        ChannelMember.objects.filter(channel=channel, member_id__in=ids).delete()
        _members_changed(channel)
    return channel


@dataclass(frozen=True)
class _Posting:
    """How a message is posted: which checks it goes through, and what follows it.

    `roles` None is a trusted caller; otherwise sending as an agent needs the admin or
    agent_manager role. `as_user`: the sender is a user even when `sender_id` names an agent.
    `user_id`: the posting user, the only one who may edit the message later. `announce`: ask
    running agent members to answer and emit `new_message` (else the caller does:
    message_replies_request, message_emit)."""

    roles: frozenset[str] | None = None
    as_user: bool = True
    user_id: int | None = None
    announce: bool = True

    @classmethod
    def by(cls, principal: Principal, *, as_user: bool) -> "_Posting":
        return cls(roles=principal.roles, as_user=as_user, user_id=principal.user_id)


_FROM_TRUSTED_USER = _Posting()
_RECORDED_FROM_TRUSTED_USER = _Posting(announce=False)


def _message_post(
    posting: _Posting,
    *,
    channel: Channel,
    sender_id: Any,
    content: Any,
    metadata: Any,
    in_reply_to: Message | None = None,
    message_id: uuid.UUID | None = None,
    source_type: str = "",
    raw_message: Any = None,
) -> Message:
    """Behind message_post*, message_record and the agent replies."""
    content = validate_content(content)
    metadata = validate_metadata(metadata)
    if not isinstance(sender_id, str) or not 1 <= len(sender_id) <= MAX_MEMBER_ID:
        raise ValidationFailed(details={"sender_id": [f"1 to {MAX_MEMBER_ID} characters."]})
    agent = None if posting.as_user else _agents_by_ref([sender_id]).get(sender_id)
    if agent is not None:
        if posting.roles is not None and not posting.roles & {"admin", "agent_manager"}:
            raise PermissionDeniedError(
                "Sending as an agent needs the admin or agent_manager role.",
                details={
                    "action": "channels.messages.send_as_agent",
                    "required_roles": ["admin", "agent_manager"],
                },
            )
        sender_id = str(agent.agent_id)
    if (
        channel.type != Channel.Type.PUBLIC
        and not channel.members.filter(member_id=sender_id).exists()
    ):
        raise ValidationFailed(
            details={"sender_id": ["The sender is not a member of this channel."]}
        )
    depth = in_reply_to.reply_depth + 1 if agent is not None and in_reply_to is not None else 0
    with transaction.atomic():
        message = Message.objects.create(
            message_id=message_id or uuid.uuid4(),
            channel=channel,
            sender_id=sender_id,
            sender_type=Message.SenderType.AGENT if agent else Message.SenderType.USER,
            content=content,
            metadata=metadata,
            in_reply_to=in_reply_to,
            reply_depth=depth,
            posted_by_id=posting.user_id,
            source_type=source_type,
            raw_message=raw_message,
        )
        resource_version_bump(messages_resource(channel.channel_id))
        # The replies are asked for before the event: their query runs before the event log's
        # lock is taken, and after commit the worker gets its task before the live publish.
        if posting.announce:
            message_replies_request(message)
            message_emit(message)
    return message


def message_post(
    *,
    principal: Principal,
    channel: Channel,
    sender_id: Any,
    content: Any,
    metadata: Any = None,
    in_reply_to: Message | None = None,
    message_id: uuid.UUID | None = None,
    source_type: str = "",
    raw_message: Any = None,
) -> Message:
    """A principal's message (REST, ElizaOS submit, admin): `sender_id` names a user or an
    agent, and sending as an agent needs the admin or agent_manager role. Emits
    `new_message`; running agent members are asked to answer."""
    return _message_post(
        _Posting.by(principal, as_user=False),
        channel=channel,
        sender_id=sender_id,
        content=content,
        metadata=metadata,
        in_reply_to=in_reply_to,
        message_id=message_id,
        source_type=source_type,
        raw_message=raw_message,
    )


def message_post_as_principal(
    *, principal: Principal, channel: Channel, content: Any, metadata: Any = None
) -> Message:
    """A principal's message sent as itself (the WebSocket's `send_message`): the sender is
    its member id, a user even when that happens to name an agent."""
    return _message_post(
        _Posting.by(principal, as_user=True),
        channel=channel,
        sender_id=principal.username,
        content=content,
        metadata=metadata,
    )


def message_post_internal(
    *, channel: Channel, sender_id: Any, content: Any, metadata: Any = None
) -> Message:
    """A trusted caller's message from the user `sender_id` (an external participant id):
    emitted, and answered by running agent members."""
    return _message_post(
        _FROM_TRUSTED_USER, channel=channel, sender_id=sender_id, content=content, metadata=metadata
    )


def message_record(
    *, channel: Channel, sender_id: Any, content: Any, metadata: Any = None
) -> Message:
    """message_post_internal without the announcement, for a caller with more work to do in
    its transaction (a session asking its agent synchronously). Call inside that transaction;
    it then calls message_replies_request() if it wants agents to answer, and message_emit()
    last: the event log's lock is held from an emit to the commit."""
    return _message_post(
        _RECORDED_FROM_TRUSTED_USER,
        channel=channel,
        sender_id=sender_id,
        content=content,
        metadata=metadata,
    )


def message_emit(message: Message) -> None:
    """The `new_message` event of a message (message_post's, or message_record's caller's)."""
    event_emit(
        event_type=NEW_MESSAGE_EVENT,
        data={
            "channel_id": message.channel_id,
            "message": {
                "message_id": message.message_id,
                "sender_id": message.sender_id,
                "sender_type": message.sender_type,
                "content": message.content,
                "sent_at": message.sent_at,
                "in_reply_to": message.in_reply_to_id,
            },
        },
        scope=EventScope(channel_id=message.channel_id),
    )


def agents_to_answer(message: Message) -> list[uuid.UUID]:
    """Running agent members other than the sender; for an agent's message only when its
    metadata asks for agent replies and fewer than MAX_AGENT_HOPS hops were made."""
    if message.sender_type == Message.SenderType.AGENT and not (
        message.metadata.get(ALLOW_AGENT_REPLIES) is True and message.reply_depth < MAX_AGENT_HOPS
    ):
        return []
    member_ids = message.channel.members.filter(member_type=ChannelMember.Type.AGENT).values_list(
        "member_id", flat=True
    )
    return list(
        Agent.objects.filter(agent_id__in=list(member_ids), status=Agent.Status.RUNNING)
        .exclude(agent_id=message.sender_id if message.sender_type == "agent" else None)
        .values_list("agent_id", flat=True)
    )


def message_replies_request(message: Message) -> None:
    """Ask the agents that should answer `message` (agents_to_answer), after commit."""
    from messaging.tasks import agent_reply  # the task module imports this one

    for agent_id in agents_to_answer(message):
        agent_reply.delay_on_commit(str(message.message_id), str(agent_id))


def message_edit(*, message: Message, content: Any, actor: AbstractBaseUser) -> Message:
    content = validate_content(content)
    if message.posted_by_id is None or message.posted_by_id != actor.pk:
        raise MessageNotEditable()
    with transaction.atomic():
        message.content = content
        message.edited_at = timezone.now()
        message.save(update_fields=["content", "edited_at"])
        resource_version_bump(messages_resource(message.channel_id))
    return message


def _agent_reply(*, message: Message, agent: Agent, content: str, announce: bool) -> Message | None:
    metadata = (
        {ALLOW_AGENT_REPLIES: True} if message.metadata.get(ALLOW_AGENT_REPLIES) is True else {}
    )
    try:
        return _message_post(
            _Posting(as_user=False, announce=announce),
            channel=message.channel,
            sender_id=str(agent.agent_id),
            content=content[:MAX_CONTENT],
            metadata=metadata,
            in_reply_to=message,
        )
    except IntegrityError:
        return None


def agent_reply_store(*, message: Message, agent: Agent, content: str) -> Message | None:
    """Post an agent's answer to `message` (the agent-reply task): emitted, and answered by
    the other running agent members when its metadata asks for agent replies. None if that
    agent had already answered it (a redelivered task)."""
    return _agent_reply(message=message, agent=agent, content=content, announce=True)


def agent_reply_record(*, message: Message, agent: Agent, content: str) -> Message | None:
    """agent_reply_store without the announcement, as message_record: no agent is asked to
    answer the answer, and the caller emits it (message_emit)."""
    return _agent_reply(message=message, agent=agent, content=content, announce=False)
