import uuid

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import selectors, services
from messaging.exceptions import MessageNotFound
from messaging.models import Message
from messaging.serializers import (
    ChannelCreatedSerializer,
    ChannelCreateInputSerializer,
    ChannelDetailSerializer,
    ChannelListSerializer,
    ChannelSerializer,
    ElizaSubmitInputSerializer,
    MembersInputSerializer,
    MessageEditInputSerializer,
    MessageHistorySerializer,
    MessageInputSerializer,
    MessageSerializer,
    message_data,
)
from system.kernel.caching import cached_read
from system.kernel.exceptions import ValidationFailed
from system.kernel.idempotency import idempotent
from system.kernel.pagination import PagePagination, limit_param
from system.kernel.principal import principal_from_request
from system.kernel.validation import validated

HISTORY_CONTRACT = """Messages of a channel, one page at a time.

* A page is always ordered oldest → newest.
* No cursor: the newest `limit` messages.
* `before=X`: the newest `limit` messages strictly older than X.
* `after=X`: the oldest `limit` messages strictly newer than X.
* X is an ISO-8601 timestamp or the id of a message of this channel.
* Order is (sent_at, message_id): messages sharing a timestamp are never skipped or repeated
  when walking pages with the id cursors.
* `has_more` is true only when another page exists in the direction asked (older for no
  cursor and `before`, newer for `after`); `next_before` / `next_after` are the ids of the
  page's oldest / newest message, to pass as `before` / `after`.
* `limit` defaults to 50 and is capped at 200. A bad timestamp or unknown id is a 400 naming
  the parameter.
"""


def _messages_resources(view, request: Request, channel_id: str) -> list[str]:
    return [services.messages_resource(channel_id)]


class ChannelViewSet(viewsets.ViewSet):
    """Channels, their members and their messages."""

    lookup_field = "channel_id"
    lookup_value_regex = "[^/]+"
    policy_actions = {
        "list": "channels.list",
        "create": "channels.create",
        "retrieve": "channels.read",
        "members:post": "channels.members.add",
        "members:delete": "channels.members.remove",
        "member": "channels.members.remove",
        "messages:get": "channels.messages.list",
        "messages:post": "channels.messages.send",
        "message": "channels.messages.edit",
    }

    def _channel(self, request: Request, channel_id: str):
        return selectors.channel_get_visible(
            principal=principal_from_request(request), channel_id=channel_id
        )

    def _detail(self, request: Request, channel_id: str) -> Response:
        channel = (
            selectors.channels_visible(principal=principal_from_request(request))
            .annotate(member_count=Count("members"))
            .prefetch_related("members")
            .filter(pk=self._channel(request, channel_id).pk)
            .get()
        )
        return Response(ChannelDetailSerializer(channel).data)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("limit", int)],
        # One page object, not a list of them (drf-spectacular wraps a `list` action's answer).
        responses={200: extend_schema_serializer(many=False)(ChannelListSerializer)},
    )
    def list(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="channels")
        channels = selectors.channels_visible(principal=principal_from_request(request))
        rows = pagination.slice(
            channels.annotate(member_count=Count("members")).order_by("created_at", "channel_id"),
            count=channels,
        )
        return pagination.response(ChannelSerializer(rows, many=True).data)

    @extend_schema(request=ChannelCreateInputSerializer, responses={201: ChannelCreatedSerializer})
    def create(self, request: Request) -> Response:
        def handler() -> Response:
            data = validated(ChannelCreateInputSerializer, request.data)
            channel = services.channel_create(
                name=data["name"],
                type=data["type"],
                members=data.get("members"),
                actor=request.user,
                agent_replies_enabled=data.get("agent_replies_enabled", False),
                principal=principal_from_request(request),
            )
            channel.member_count = channel.members.count()
            # Members come back as sent: a channel made with `ceo-mimi-001` lists that name.
            body = {**ChannelSerializer(channel).data, "members": data.get("members") or []}
            return Response(body, status=201)

        return idempotent(request, handler)

    @extend_schema(responses={200: ChannelDetailSerializer})
    def retrieve(self, request: Request, channel_id: str) -> Response:
        return self._detail(request, channel_id)

    @extend_schema(
        methods=["POST", "DELETE"],
        request=MembersInputSerializer,
        responses={200: ChannelDetailSerializer},
    )
    @action(detail=True, methods=["post", "delete"])
    def members(self, request: Request, channel_id: str) -> Response:
        channel = self._channel(request, channel_id)
        data = validated(MembersInputSerializer, request.data)
        actor = principal_from_request(request)
        if request.method == "POST":
            services.channel_members_add(channel=channel, members=data["members"], actor=actor)
        else:
            services.channel_members_remove(channel=channel, members=data["members"], actor=actor)
        return self._detail(request, channel_id)

    @extend_schema(
        request=None,
        responses={200: ChannelDetailSerializer},
        operation_id="v1_channels_member_remove",
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<member_id>[^/]+)")
    def member(self, request: Request, channel_id: str, member_id: str) -> Response:
        channel = self._channel(request, channel_id)
        services.channel_members_remove(
            channel=channel, members=[member_id], actor=principal_from_request(request)
        )
        return self._detail(request, channel_id)

    @extend_schema(
        methods=["GET"],
        description=HISTORY_CONTRACT,
        parameters=[
            OpenApiParameter("limit", int, description="1 to 200, default 50"),
            OpenApiParameter("before", str, description="ISO-8601 timestamp or message id"),
            OpenApiParameter("after", str, description="ISO-8601 timestamp or message id"),
        ],
        responses={200: MessageHistorySerializer},
    )
    @extend_schema(
        methods=["POST"],
        request=MessageInputSerializer,
        responses={201: MessageSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER)],
    )
    @action(detail=True, methods=["get", "post"])
    def messages(self, request: Request, channel_id: str) -> Response:
        if request.method == "POST":
            return self._post_message(request, channel_id)
        return self._history(request, channel_id)

    @cached_read(max_age=20, resources=_messages_resources)
    def _history(self, request: Request, channel_id: str) -> Response:
        channel = self._channel(request, channel_id)
        limit = limit_param(request, default=50, max_limit=200)
        before, after = request.query_params.get("before"), request.query_params.get("after")
        if before and after:
            raise ValidationFailed(
                "Use 'before' or 'after', not both.", details={"before": ["Not with 'after'."]}
            )
        page = selectors.message_history(
            channel=channel,
            limit=limit,
            before=selectors.parse_cursor(channel=channel, name="before", value=before)
            if before
            else None,
            after=selectors.parse_cursor(channel=channel, name="after", value=after)
            if after
            else None,
        )
        messages = page.messages
        return Response(
            {
                "messages": [message_data(m) for m in messages],
                "has_more": page.has_more,
                "next_before": str(messages[0].message_id) if messages else None,
                "next_after": str(messages[-1].message_id) if messages else None,
            }
        )

    def _post_message(self, request: Request, channel_id: str) -> Response:
        channel = self._channel(request, channel_id)

        def handler() -> Response:
            data = validated(MessageInputSerializer, request.data)
            message = services.message_post(
                principal=principal_from_request(request),
                channel=channel,
                sender_id=data["sender_id"],
                content=data["content"],
                metadata=data.get("metadata"),
            )
            return Response(message_data(message), status=201)

        return idempotent(request, handler)

    @extend_schema(request=MessageEditInputSerializer, responses={200: MessageSerializer})
    @action(detail=True, methods=["patch"], url_path=r"messages/(?P<message_id>[^/]+)")
    def message(self, request: Request, channel_id: str, message_id: str) -> Response:
        channel = self._channel(request, channel_id)
        try:
            message = Message.objects.get(channel=channel, pk=uuid.UUID(message_id))
        except (ValueError, Message.DoesNotExist):
            raise MessageNotFound() from None
        data = validated(MessageEditInputSerializer, request.data)
        message = services.message_edit(
            message=message, content=data["content"], actor=principal_from_request(request)
        )
        return Response(message_data(message))


class ElizaSubmitView(APIView):
    """ElizaOS central messaging: `POST /api/messaging/submit`, ElizaOS's shapes."""

    policy_action = "messaging.submit"
    REQUIRED = (
        "channel_id",
        "message_server_id",
        "author_id",
        "content",
        "source_type",
        "raw_message",
    )

    @extend_schema(request=ElizaSubmitInputSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        missing = [f for f in self.REQUIRED if body.get(f) in (None, "")]
        if missing:
            return Response(
                {"success": False, "error": f"Missing required fields: {', '.join(missing)}"},
                status=400,
            )
        data = validated(ElizaSubmitInputSerializer, body)
        principal = principal_from_request(request)
        channel = selectors.channel_get_visible(principal=principal, channel_id=data["channel_id"])
        in_reply_to = None
        if data.get("in_reply_to_message_id"):
            in_reply_to = _message_in(channel, data["in_reply_to_message_id"])
        message_id = _uuid_or_none(data.get("messageId"))
        existing = (
            Message.objects.filter(pk=message_id, channel=channel).first() if message_id else None
        )
        message = existing or services.message_post(
            principal=principal,
            channel=channel,
            sender_id=data["author_id"],
            content=data["content"],
            metadata={
                **(data.get("metadata") or {}),
                "message_server_id": data["message_server_id"],
            },
            in_reply_to=in_reply_to,
            message_id=message_id,
            source_type=data["source_type"],
            raw_message=data["raw_message"],
        )
        return Response({"success": True, "data": _eliza_message(message)}, status=201)


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        raise ValidationFailed(details={"messageId": ["Must be a UUID."]}) from None


def _message_in(channel, message_id: str) -> Message:
    message = Message.objects.filter(channel=channel, pk=_uuid_or_none(message_id)).first()
    if message is None:
        raise MessageNotFound(details={"in_reply_to_message_id": message_id})
    return message


def _eliza_message(message: Message) -> dict:
    metadata = dict(message.metadata)
    return {
        "id": str(message.message_id),
        "channelId": str(message.channel_id),
        "authorId": message.sender_id,
        "content": message.content,
        "rawMessage": message.raw_message,
        "sourceType": message.source_type,
        "metadata": metadata,
        "inReplyToRootMessageId": str(message.in_reply_to_id) if message.in_reply_to_id else None,
        "createdAt": message.sent_at.isoformat(),
        "updatedAt": (message.edited_at or message.sent_at).isoformat(),
    }
