"""Channels, membership and messages: every change goes through here (REST, ElizaOS submit,
admin and the agent-reply task alike)."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from messaging.agent_replies import (
    agents_to_answer,
    channel_agent_replies_check,
    reply_slots_claim,
)
from messaging.bus import bus_record, in_conversation, reply_metadata
from messaging.exceptions import ChannelOwnerNotRemovable, MessageNotEditable
from messaging.members import (
    MAX_MEMBER_ID,
    agents_by_ref,
    resolve_members,
    sender_check,
    username_member_ref,
)
from messaging.models import Channel, ChannelMember, Message
from messaging.selectors import channel_managed_by
from messaging.validation import MAX_CONTENT, validate_content, validate_metadata
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.caching import resource_version_bump
from system.kernel.exceptions import PermissionDeniedError, ValidationFailed
from system.kernel.outbox import enqueue
from system.kernel.principal import Principal
from system.kernel.sockets import sockets_channel_access_changed

MAX_NAME = 100
NEW_MESSAGE_EVENT = "new_message"


def messages_resource(channel_id: uuid.UUID | str) -> str:
    return f"channel:{channel_id}:messages"


def channel_create(
    *,
    name: Any,
    type: Any,
    members: Any,
    actor: AbstractBaseUser,
    creator_member: bool = False,
    agent_replies_enabled: Any = False,
    principal: Principal | None = None,
) -> Channel:
    """`actor` creates the channel and owns it (it manages the members). It is a member of
    the private channels it makes, and of any other when `creator_member` (a session's
    channel: its owner reads the conversation). `agent_replies_enabled` needs `principal` to
    be admin or agent_manager (None: a trusted caller)."""
    agent_replies_enabled = channel_agent_replies_check(
        enabled=agent_replies_enabled, principal=principal
    )
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
    if type == Channel.Type.PRIVATE or creator_member:
        creator = username_member_ref(actor.get_username())
        if creator not in resolved:
            resolved.append(creator)
    # No savepoint inside a caller's transaction (a session's channel): a failure here fails
    # that transaction as a whole, and the two statements a savepoint costs are saved.
    with transaction.atomic(savepoint=False):
        channel = Channel.objects.create(
            name=name.strip(),
            type=type,
            created_by=actor,
            agent_replies_enabled=agent_replies_enabled,
        )
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


def _members_change_check(*, channel: Channel, actor: Principal) -> None:
    if not channel_managed_by(principal=actor, channel=channel):
        raise PermissionDeniedError(
            "Only the channel's owner, an admin or an agent manager changes its members.",
            details={"channel_id": str(channel.channel_id)},
        )
    if channel.type == Channel.Type.DIRECT:
        raise ValidationFailed(details={"members": ["A direct channel's members cannot change."]})


def channel_members_add(*, channel: Channel, members: Any, actor: Principal) -> Channel:
    _members_change_check(channel=channel, actor=actor)
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


def channel_members_remove(*, channel: Channel, members: Any, actor: Principal) -> Channel:
    """`members`: agent ids or names, member ids (every kind with that id), or
    `<member_type>:<id>`. The owner's own membership cannot be removed (409)."""
    _members_change_check(channel=channel, actor=actor)
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValidationFailed(details={"members": ["A list of member ids or agent names."]})
    agents = agents_by_ref(members)
    match = Q(pk__in=[])
    for ref in members:
        kind, _, member_id = ref.partition(":")
        if ref in agents:
            match |= Q(member_type=ChannelMember.Type.AGENT, member_id=str(agents[ref].agent_id))
        elif member_id and kind in ChannelMember.Type.values:
            match |= Q(member_type=kind, member_id=member_id)
        else:
            match |= Q(member_id=ref)
    removed = ChannelMember.objects.filter(match, channel=channel)
    if channel.created_by is not None:
        owner = username_member_ref(channel.created_by.get_username())
        if removed.filter(member_type=owner.member_type, member_id=owner.member_id).exists():
            raise ChannelOwnerNotRemovable(details={"member_id": owner.member_id})
    with transaction.atomic():
        removed.delete()
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
    principal: Principal | None = None  # checked by sender_check; None: a trusted caller

    @classmethod
    def by(cls, principal: Principal, *, as_user: bool) -> "_Posting":
        return cls(
            roles=principal.roles, as_user=as_user, user_id=principal.user_id, principal=principal
        )


_FROM_TRUSTED_USER = _Posting()


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
    agent = None if posting.as_user else agents_by_ref([sender_id]).get(sender_id)
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
    elif posting.principal is not None:
        sender_check(principal=posting.principal, sender_id=sender_id)
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
    *,
    channel: Channel,
    sender_id: Any,
    content: Any,
    metadata: Any = None,
    posted_by_id: int | None = None,
) -> Message:
    """message_post_internal without the announcement, for a caller with more work to do in
    its transaction (a session asking its agent synchronously). Call inside that transaction;
    it then calls message_replies_request() if it wants agents to answer, and message_emit()
    last: the event log's lock is held from an emit to the commit."""
    return _message_post(
        _Posting(announce=False, user_id=posted_by_id),
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
                # An ElizaOS session's messages also carry its bus record, as its REST answers.
                **(bus_record(message) if in_conversation(message) else {}),
            },
        },
        scope=EventScope(channel_id=message.channel_id),
    )


def message_replies_request(message: Message) -> None:
    """Ask the agents that should answer `message` (agents_to_answer), after commit, within
    the AGENT_REPLY_FANOUT_MAX replies its original message may cause in all."""
    from messaging.tasks import agent_reply  # the task module imports this one

    agent_ids = agents_to_answer(message)
    for agent_id in agent_ids[: reply_slots_claim(message=message, wanted=len(agent_ids))]:
        enqueue(agent_reply, str(message.message_id), str(agent_id))


def message_edit(*, message: Message, content: Any, actor: Principal) -> Message:
    """Only the principal that posted the message (or an admin) edits it."""
    content = validate_content(content)
    if not actor.is_admin and (
        message.posted_by_id is None or message.posted_by_id != actor.user_id
    ):
        raise MessageNotEditable()
    with transaction.atomic():
        message.content = content
        message.edited_at = timezone.now()
        message.save(update_fields=["content", "edited_at"])
        resource_version_bump(messages_resource(message.channel_id))
    return message


def _agent_reply(
    *, message: Message, agent: Agent, content: str, announce: bool, reply_id: uuid.UUID | None
) -> Message | None:
    try:
        return _message_post(
            _Posting(as_user=False, announce=announce),
            channel=message.channel,
            sender_id=str(agent.agent_id),
            content=content[:MAX_CONTENT],
            metadata=reply_metadata(message),
            in_reply_to=message,
            message_id=reply_id,
        )
    except IntegrityError:
        return None


def agent_reply_store(*, message: Message, agent: Agent, content: str) -> Message | None:
    """Post an agent's answer to `message` (the agent-reply task): emitted, and answered by
    the other running agent members when the channel has agent replies enabled. None if that
    agent had already answered it (a redelivered task)."""
    return _agent_reply(message=message, agent=agent, content=content, announce=True, reply_id=None)


def agent_reply_record(
    *, message: Message, agent: Agent, content: str, message_id: uuid.UUID | None = None
) -> Message | None:
    """agent_reply_store without the announcement, as message_record: no agent is asked to
    answer the answer, and the caller emits it (message_emit). `message_id`: an id announced
    before the reply exists (a stream's chunks)."""
    return _agent_reply(
        message=message, agent=agent, content=content, announce=False, reply_id=message_id
    )
