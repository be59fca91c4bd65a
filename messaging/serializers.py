from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from messaging.members import MAX_MEMBER_ID, MAX_MEMBERS
from messaging.models import Channel, ChannelMember, Message
from messaging.services import MAX_NAME
from messaging.validation import MAX_CONTENT
from system.kernel.schema_fields import NON_BLANK_TEXT, TEXT, SchemaJSONField, storable_json

# The schemas of what messaging.services and messaging.members accept: the serializers take
# any JSON, so that the services report every problem in one 400.
_MEMBER_ID = {"type": "string", "minLength": 1, "maxLength": MAX_MEMBER_ID, "pattern": TEXT}
_MEMBER = {
    "anyOf": [
        _MEMBER_ID,
        {
            "type": "object",
            "required": ["member_id"],
            "properties": {
                "member_id": _MEMBER_ID,
                "member_type": {
                    "type": "string",
                    "nullable": True,
                    "enum": [*ChannelMember.Type.values, None],
                },
            },
        },
    ]
}
_MEMBERS = {"type": "array", "maxItems": MAX_MEMBERS, "items": _MEMBER}
_CONTENT = {"type": "string", "maxLength": MAX_CONTENT, "pattern": NON_BLANK_TEXT}
_METADATA = {
    "type": "object",
    "nullable": True,
    "description": "At most 16 KiB of JSON.",
    "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
}


def _refuse_nul(value: Any) -> Any:
    """Text PostgreSQL cannot store (a NUL character) is refused, where it is typed text; free
    JSON is kept with U+FFFD for it (storable_json)."""
    if isinstance(value, str) and "\x00" in value:
        raise serializers.ValidationError("Text may not contain NUL characters.")
    return value


def _refuse_nul_members(members: Any) -> Any:
    """Of each member only its id is kept: that is the text checked."""
    for member in members if isinstance(members, list) else []:
        _refuse_nul(member.get("member_id") if isinstance(member, dict) else member)
    return members


class ChannelCreateInputSerializer(serializers.Serializer):
    """Shape only; the rules live in messaging.services (one 400 with every detail)."""

    name = SchemaJSONField({"type": "string", "maxLength": MAX_NAME, "pattern": NON_BLANK_TEXT})
    # Inside allOf: drf-spectacular's enum hook would otherwise merge it with the model's.
    type = SchemaJSONField(
        {
            "allOf": [{"type": "string", "enum": list(Channel.Type.values)}],
            "description": "public, private or direct",
        }
    )
    members = SchemaJSONField(
        {**_MEMBERS, "nullable": True},
        required=False,
        allow_null=True,
        help_text="Agents (UUID or name; `agent:<ref>` to insist), user ids (`user:<id>`); "
        "required for private channels, exactly two for a direct one",
    )
    agent_replies_enabled = SchemaJSONField(
        {"type": "boolean"},
        required=False,
        help_text="Agents answer agents here (admin or agent_manager only); default false",
    )

    def validate_name(self, value: Any) -> Any:
        return _refuse_nul(value)

    def validate_members(self, value: Any) -> Any:
        return _refuse_nul_members(value)


class _ChannelCreateInputExtension(OpenApiSerializerExtension):
    """The serializer's schema, plus what depends on `type`: members for a private channel,
    two distinct ones for a direct channel."""

    target_class = ChannelCreateInputSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        two = {"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True}
        schema["oneOf"] = [
            {"properties": {"type": {"pattern": "^public$"}}},
            {
                "required": ["members"],
                "properties": {"type": {"pattern": "^private$"}, "members": {"type": "array"}},
            },
            {
                "required": ["members"],
                "properties": {"type": {"pattern": "^direct$"}, "members": two},
            },
        ]
        return schema


class MembersInputSerializer(serializers.Serializer):
    members = SchemaJSONField(_MEMBERS)

    def validate_members(self, value: Any) -> Any:
        return _refuse_nul_members(value)


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
    sender_id = SchemaJSONField(_MEMBER_ID)
    content = SchemaJSONField(_CONTENT, allow_null=True)
    metadata = SchemaJSONField(_METADATA, required=False, allow_null=True)

    def validate_sender_id(self, value: Any) -> Any:
        return _refuse_nul(value)

    def validate_content(self, value: Any) -> Any:
        return _refuse_nul(value)

    def validate_metadata(self, value: Any) -> Any:
        return storable_json(value)


class MessageEditInputSerializer(serializers.Serializer):
    content = SchemaJSONField(_CONTENT, allow_null=True)

    def validate_content(self, value: Any) -> Any:
        return _refuse_nul(value)


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
    channel_id = serializers.CharField(allow_blank=False)
    message_server_id = serializers.CharField(allow_blank=False)
    author_id = serializers.CharField(allow_blank=False, max_length=MAX_MEMBER_ID)
    content = SchemaJSONField(_CONTENT)
    source_type = serializers.CharField(allow_blank=False)
    raw_message = SchemaJSONField(
        {
            "description": "Any JSON but null or an empty string.",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
                _METADATA | {"nullable": False},
            ],
        }
    )
    metadata = SchemaJSONField(_METADATA, required=False, allow_null=True)

    def validate_content(self, value: Any) -> Any:
        return _refuse_nul(value)

    def validate_raw_message(self, value: Any) -> Any:
        return storable_json(value)

    def validate_metadata(self, value: Any) -> Any:
        return storable_json(value)

    in_reply_to_message_id = serializers.CharField(required=False, allow_null=True)
    messageId = serializers.CharField(required=False, allow_null=True)  # noqa: N815 - ElizaOS's name
