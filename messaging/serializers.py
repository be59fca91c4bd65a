from typing import Any

from rest_framework import serializers

from messaging.models import Channel, ChannelMember, Message


class ChannelCreateInputSerializer(serializers.Serializer):
    """Shape only; the rules live in messaging.services (one 400 with every detail)."""

    name = serializers.JSONField()
    type = serializers.JSONField(help_text="public, private or direct")
    members = serializers.JSONField(
        required=False,
        help_text="Agents (UUID or name; `agent:<ref>` to insist), user ids (`user:<id>`)",
    )
    agent_replies_enabled = serializers.JSONField(
        required=False,
        help_text="Agents answer agents here (admin or agent_manager only); default false",
    )


class MembersInputSerializer(serializers.Serializer):
    members = serializers.JSONField()


class ChannelSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField()

    class Meta:
        model = Channel
        fields = ["channel_id", "name", "type", "created_at", "member_count"]


class ChannelCreatedSerializer(ChannelSerializer):
    """The create answer (schema): the channel plus `members` exactly as the caller sent them."""

    members = serializers.ListField(
        child=serializers.JSONField(),
        help_text="The members as sent (agent names stay names)",
    )

    class Meta(ChannelSerializer.Meta):
        fields = [*ChannelSerializer.Meta.fields, "members"]


class ChannelMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChannelMember
        fields = ["member_id", "member_type"]


class ChannelDetailSerializer(ChannelSerializer):
    members = ChannelMemberSerializer(many=True)

    class Meta(ChannelSerializer.Meta):
        fields = [*ChannelSerializer.Meta.fields, "members", "agent_replies_enabled"]


class ChannelListSerializer(serializers.Serializer):
    channels = ChannelSerializer(many=True)
    pagination = serializers.DictField()


class MessageInputSerializer(serializers.Serializer):
    sender_id = serializers.JSONField()
    content = serializers.JSONField(allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)


class MessageEditInputSerializer(serializers.Serializer):
    content = serializers.JSONField(allow_null=True)


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "message_id",
            "channel_id",
            "sender_id",
            "sender_type",
            "content",
            "metadata",
            "sent_at",
            "edited_at",
            "in_reply_to",
        ]


def message_data(message: Message) -> dict[str, Any]:
    """`MessageSerializer(message).data`, built directly: a history page renders up to 200
    messages, and DRF's per-field machinery cost more than the page's query did
    (bench/README.md). The serializer stays the schema; a test holds the two equal."""
    return {
        "message_id": str(message.message_id),
        "channel_id": message.channel_id,
        "sender_id": message.sender_id,
        "sender_type": str(message.sender_type),
        "content": message.content,
        "metadata": message.metadata,
        "sent_at": message.sent_at,
        "edited_at": message.edited_at,
        "in_reply_to": message.in_reply_to_id,
    }


class MessageHistorySerializer(serializers.Serializer):
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()
    next_before = serializers.UUIDField(allow_null=True)
    next_after = serializers.UUIDField(allow_null=True)


class ElizaSubmitInputSerializer(serializers.Serializer):
    channel_id = serializers.CharField()
    message_server_id = serializers.CharField()
    author_id = serializers.CharField()
    content = serializers.JSONField()
    source_type = serializers.CharField()
    raw_message = serializers.JSONField()
    metadata = serializers.JSONField(required=False)
    in_reply_to_message_id = serializers.CharField(required=False, allow_null=True)
    messageId = serializers.CharField(required=False, allow_null=True)  # noqa: N815 - ElizaOS's name
