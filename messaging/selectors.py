"""Reads: which channels a principal sees, and message history by keyset."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from rest_framework.request import Request

from messaging.exceptions import ChannelNotFound
from messaging.models import Channel, ChannelMember, Message
from system.kernel.exceptions import ValidationFailed
from system.kernel.principal import request_roles
from system.kernel.roles import ADMIN


def principal_member_id(request: Request) -> str:
    """How a principal of ours appears in channel memberships: its username."""
    return request.user.get_username()


def channels_visible(*, request: Request) -> QuerySet:
    """Public channels for everyone; private and direct ones for members; all for admins."""
    channels = Channel.objects.all()
    if ADMIN in request_roles(request):
        return channels
    membership = ChannelMember.objects.filter(
        channel=OuterRef("pk"), member_id=principal_member_id(request)
    )
    return channels.filter(Q(type=Channel.Type.PUBLIC) | Exists(membership))


def channel_get_visible(*, request: Request, channel_id: str) -> Channel:
    """404 `channel_not_found` for channels that do not exist and for those the caller may
    not see alike: existence does not leak."""
    try:
        pk = uuid.UUID(channel_id)
    except ValueError:
        raise ChannelNotFound() from None
    channel = channels_visible(request=request).filter(pk=pk).first()
    if channel is None:
        raise ChannelNotFound()
    return channel


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
        return Cursor(make_aware(moment) if is_naive(moment) else moment, None)
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
