"""Reads: which channels a principal sees, and message history by keyset."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncHour, TruncMinute
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from messaging.exceptions import ChannelNotFound
from messaging.members import principal_member_ref
from messaging.models import Channel, ChannelMember, Message
from system.kernel.access import unique_or_none
from system.kernel.exceptions import ValidationFailed
from system.kernel.principal import Principal
from system.kernel.roles import AGENT_MANAGER


def channel_visible_to(
    *, principal: Principal, channel_type: str, members: Collection[tuple[str, str]]
) -> bool:
    """THE channel-visibility rule, which every path (REST, WebSocket, admin) goes through:
    public channels for everyone; private and direct ones for their members, compared as
    (member_type, member_id) pairs with the principal's own (principal_member_ref: an
    external participant or agent id never matches a local account); all for admins.
    `members` may be empty for a public channel. channels_visible is the same rule as a
    QuerySet."""
    ref = principal_member_ref(principal)
    return (
        principal.is_admin
        or channel_type == Channel.Type.PUBLIC
        or (ref.member_type, ref.member_id) in members
    )


def channels_visible(*, principal: Principal) -> QuerySet:
    """channel_visible_to in SQL: the channels the principal sees."""
    channels = Channel.objects.all()
    if principal.is_admin:
        return channels
    ref = principal_member_ref(principal)
    membership = ChannelMember.objects.filter(
        channel=OuterRef("pk"), member_id=ref.member_id, member_type=ref.member_type
    )
    return channels.filter(Q(type=Channel.Type.PUBLIC) | Exists(membership))


def channel_get_visible(*, principal: Principal, channel_id: object) -> Channel:
    """404 `channel_not_found` for channels that do not exist and for those the caller may
    not see alike: existence does not leak. `channel_id` may be anything a client sent."""
    try:
        pk = uuid.UUID(str(channel_id))
    except ValueError:
        raise ChannelNotFound() from None
    channel = unique_or_none(channels_visible(principal=principal).filter(pk=pk))
    if channel is None:
        raise ChannelNotFound()
    return channel


@dataclass(frozen=True)
class ChannelAudience:
    """What a channel's visibility depends on, for callers that cache it (the WebSocket's
    per-process directory): its type and, unless it is public, its members as
    (member_type, member_id) pairs."""

    channel_type: str
    members: frozenset[tuple[str, str]]

    def visible_to(self, principal: Principal) -> bool:
        return channel_visible_to(
            principal=principal, channel_type=self.channel_type, members=self.members
        )


def channel_audience(*, channel_id: object) -> ChannelAudience | None:
    """None for a channel that does not exist (or an id that is not one)."""
    try:
        pk = uuid.UUID(str(channel_id))
    except ValueError:
        return None
    channel_type = Channel.objects.filter(pk=pk).values_list("type", flat=True).first()
    if channel_type is None:
        return None
    if channel_type == Channel.Type.PUBLIC:
        return ChannelAudience(channel_type=channel_type, members=frozenset())
    members = ChannelMember.objects.filter(channel_id=pk).values_list("member_type", "member_id")
    return ChannelAudience(channel_type=channel_type, members=frozenset(members))


def channel_managed_by(*, principal: Principal, channel: Channel) -> bool:
    """Who adds and removes members: the channel's owner (its creator), admins and agent
    managers."""
    return (
        principal.is_admin
        or AGENT_MANAGER in principal.roles
        or (channel.created_by_id is not None and channel.created_by_id == principal.user_id)
    )


@dataclass(frozen=True)
class Cursor:
    sent_at: datetime
    message_id: uuid.UUID | None  # None: a bare timestamp


@dataclass(frozen=True)
class HistoryPage:
    messages: list[Message]
    has_more: bool


def parse_cursor(*, channel: Channel, name: str, value: str) -> Cursor:
    """A cursor is an ISO-8601 timestamp or the id of a message of this channel."""
    try:
        message_id = uuid.UUID(value)
    except ValueError:
        moment = parse_datetime(value)
        if moment is None:
            raise ValidationFailed(
                f"'{name}' must be an ISO-8601 timestamp or a message id.",
                details={name: ["Not an ISO-8601 timestamp or a message id."]},
            ) from None
        moment = make_aware(moment) if is_naive(moment) else moment
        if name == "after" and moment.microsecond % 1000 == 0:
            # The API writes times to the millisecond: `after` a time as shown means after
            # that whole millisecond, so a client passing the newest `sent_at` it has read
            # does not get that message again.
            moment += timedelta(microseconds=999)
        return Cursor(moment, None)
    sent_at = (
        Message.objects.filter(channel=channel, pk=message_id)
        .values_list("sent_at", flat=True)
        .first()
    )
    if sent_at is None:
        raise ValidationFailed(
            f"'{name}' names no message of this channel.", details={name: ["Unknown message id."]}
        )
    return Cursor(sent_at, message_id)


def _older_than(cursor: Cursor) -> Q:
    if cursor.message_id is None:
        return Q(sent_at__lt=cursor.sent_at)
    return Q(sent_at__lt=cursor.sent_at) | Q(
        sent_at=cursor.sent_at, message_id__lt=cursor.message_id
    )


def _newer_than(cursor: Cursor) -> Q:
    if cursor.message_id is None:
        return Q(sent_at__gt=cursor.sent_at)
    return Q(sent_at__gt=cursor.sent_at) | Q(
        sent_at=cursor.sent_at, message_id__gt=cursor.message_id
    )


def message_history(
    *, channel: Channel, limit: int, before: Cursor | None = None, after: Cursor | None = None
) -> HistoryPage:
    """One page, oldest → newest. No cursor: the newest `limit`; `before`: the newest `limit`
    strictly older; `after`: the oldest `limit` strictly newer. Order is (sent_at, message_id),
    so equal timestamps never skip or repeat a message across pages. A keyset on the
    (channel, sent_at, message_id) index: the cost does not grow with the channel."""
    messages = Message.objects.filter(channel=channel)
    if after is not None:
        rows = list(
            messages.filter(_newer_than(after)).order_by("sent_at", "message_id")[: limit + 1]
        )
        return HistoryPage(rows[:limit], len(rows) > limit)
    if before is not None:
        messages = messages.filter(_older_than(before))
    rows = list(messages.order_by("-sent_at", "-message_id")[: limit + 1])
    return HistoryPage(list(reversed(rows[:limit])), len(rows) > limit)


def messages_count_per_bucket(*, since: datetime, per_hour: bool = False) -> dict[datetime, int]:
    """How many messages were sent in each minute (or hour) since `since`, by the bucket's
    start; buckets without messages are absent. One grouped query on sent_at (the admin
    dashboard's chart)."""
    trunc = TruncHour if per_hour else TruncMinute
    rows = (
        Message.objects.filter(sent_at__gte=since)
        .annotate(bucket=trunc("sent_at"))
        .order_by()
        .values("bucket")
        .annotate(n=Count("pk"))
    )
    return {row["bucket"]: row["n"] for row in rows}
