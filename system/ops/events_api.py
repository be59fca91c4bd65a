"""GET /api/v1/system/events: the event log read as the platform's audit log.

Readable by admin and system_monitor (`system.events.read`). Keyset pages by event id:
`after` (or its undocumented alias `since_id`) reads forward, oldest first, and the answer's
`next_after` is where to continue (a tail: poll with it); `before`, or no cursor, reads
backward, newest first, and `next_before` continues while `has_more`. Both bounds together
read the range between them, oldest first. Filters: `event_type` (comma-separated), `since`/`until`
(ISO 8601, on the entry's time), `agent_id`, `channel_id`, `session_id`.

Every page stops at the log's watermark (system.eventlog.watermark): an entry whose writer
committed while a writer of a smaller id is still in flight is left for a later page, so a
client polling with `next_after` never skips an id that commits late.

system_monitor reads "status and logs", not conversations: what an event says about private
content (message text, session context, metadata) is replaced by "[redacted]"; admin reads
it whole.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from system.eventlog import watermark
from system.kernel.principal import principal_from_request
from system.kernel.timefmt import iso_z
from system.kernel.validation import validated
from system.models import EventLogEntry

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
REDACTED = "[redacted]"
# Keys whose values are what people wrote or what a session remembers, wherever they sit in
# an event's data (`data.message.content`, `data.context`, `data.context_update`, ...).
PRIVATE_KEYS = frozenset(
    {
        "content",
        "text",
        "thought",
        "context",
        "context_update",
        "metadata",
        "raw_message",
        "rawMessage",
        "attachments",
        "summary",
        "input",
        "output",
        "result",
    }
)


class EventLogQueryDocSerializer(serializers.Serializer):
    """The documented query parameters: `since_id`, `after`'s undocumented alias, is left out,
    since OpenAPI cannot say that the two exclude each other."""

    after = serializers.IntegerField(required=False, min_value=0)
    before = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(
        required=False, min_value=1, default=DEFAULT_LIMIT, help_text="At most 200."
    )
    event_type = serializers.CharField(required=False, help_text="One or more, comma-separated.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    agent_id = serializers.UUIDField(required=False)
    channel_id = serializers.UUIDField(required=False)
    session_id = serializers.UUIDField(required=False)


class EventLogQuerySerializer(EventLogQueryDocSerializer):
    since_id = serializers.IntegerField(required=False, min_value=0, help_text="Alias of after.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "after" in attrs and "since_id" in attrs and attrs["after"] != attrs["since_id"]:
            raise serializers.ValidationError({"since_id": ["Give after or since_id, not both."]})
        if "since_id" in attrs:
            attrs["after"] = attrs.pop("since_id")
        attrs["limit"] = min(attrs["limit"], MAX_LIMIT)
        return attrs


class EventLogItemSerializer(serializers.Serializer):
    """The OpenAPI description of one entry (the view builds the dicts itself)."""

    event_id = serializers.IntegerField()
    event_type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    agent_id = serializers.UUIDField(allow_null=True)
    channel_id = serializers.UUIDField(allow_null=True)
    session_id = serializers.UUIDField(allow_null=True)
    data = serializers.JSONField()


class EventLogPaginationSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_after = serializers.IntegerField(allow_null=True)
    next_before = serializers.IntegerField(allow_null=True)


class EventLogPageSerializer(serializers.Serializer):
    events = EventLogItemSerializer(many=True)
    pagination = EventLogPaginationSerializer()


def event_log_filtered(query: dict[str, Any]) -> QuerySet[EventLogEntry]:
    """The entries matching `query`'s filters and cursors (validated EventLogQuerySerializer
    data), at or below the watermark, unordered."""
    entries = EventLogEntry.objects.filter(event_id__lte=watermark.read())
    if "after" in query:
        entries = entries.filter(event_id__gt=query["after"])
    if "before" in query:
        entries = entries.filter(event_id__lt=query["before"])
    if query.get("event_type"):
        types = [t.strip() for t in query["event_type"].split(",") if t.strip()]
        entries = entries.filter(event_type__in=types)
    if "since" in query:
        entries = entries.filter(created_at__gte=query["since"])
    if "until" in query:
        entries = entries.filter(created_at__lte=query["until"])
    for scope in ("agent_id", "channel_id", "session_id"):
        if scope in query:
            entries = entries.filter(**{scope: query[scope]})
    return entries


def event_data_redacted(data: Any) -> Any:
    """`data` with the value of every PRIVATE_KEYS key, at any depth, replaced by REDACTED
    (a null stays null: that there was nothing is not private)."""
    if isinstance(data, dict):
        return {
            key: (
                REDACTED
                if key in PRIVATE_KEYS and value is not None
                else event_data_redacted(value)
            )
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [event_data_redacted(item) for item in data]
    return data


def _item(entry: EventLogEntry, *, redact: bool) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "timestamp": iso_z(entry.created_at),
        "agent_id": str(entry.agent_id) if entry.agent_id else None,
        "channel_id": str(entry.channel_id) if entry.channel_id else None,
        "session_id": str(entry.session_id) if entry.session_id else None,
        "data": event_data_redacted(entry.payload) if redact else entry.payload,
    }


class SystemEventListView(APIView):
    policy_action = "system.events.read"

    @extend_schema(
        parameters=[EventLogQueryDocSerializer],
        responses={200: EventLogPageSerializer},
        operation_id="v1_system_events_list",
    )
    def get(self, request: Request) -> Response:
        query = validated(EventLogQuerySerializer, request.query_params)
        limit = query["limit"]
        forward = "after" in query
        order = "event_id" if forward else "-event_id"
        rows = list(event_log_filtered(query).order_by(order)[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        redact = not principal_from_request(request).is_admin
        if forward:
            next_after, next_before = (rows[-1].event_id if rows else query["after"]), None
        else:
            next_after, next_before = None, (rows[-1].event_id if rows and has_more else None)
        return Response(
            {
                "events": [_item(entry, redact=redact) for entry in rows],
                "pagination": {
                    "limit": limit,
                    "has_more": has_more,
                    "next_after": next_after,
                    "next_before": next_before,
                },
            }
        )
