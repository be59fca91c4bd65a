import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Channel(models.Model):
    class Type(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"
        DIRECT = "direct"

    channel_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Agents answer agents here (up to MAX_AGENT_HOPS deep, within AGENT_REPLY_FANOUT_MAX
    # replies per user message). Only admin and agent_manager may turn it on.
    agent_replies_enabled = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "channel_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class ChannelMember(models.Model):
    """A member, named by (member_type, member_id): an agent (its UUID), a local user (its
    username), a standalone API key (its service user's username, `key:<prefix>`), or an
    external participant (an ElizaOS `userId`, which grants nothing to a local account of
    the same name)."""

    class Type(models.TextChoices):
        AGENT = "agent"
        USER = "user"
        API_KEY = "api_key"
        EXTERNAL = "external"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=255)
    member_type = models.CharField(max_length=8, choices=Type.choices)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "member_type", "member_id"], name="channel_member_uniq"
            )
        ]
        indexes = [models.Index(fields=["member_id", "member_type"], name="channel_member_id_idx")]

    def __str__(self) -> str:
        return f"{self.member_type}:{self.member_id}"


class Message(models.Model):
    class SenderType(models.TextChoices):
        AGENT = "agent"
        USER = "user"

    message_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="messages")
    sender_id = models.CharField(max_length=255)
    sender_type = models.CharField(max_length=8, choices=SenderType.choices)
    content = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # Agent-to-agent hops since the last user message (loop protection).
    reply_depth = models.PositiveSmallIntegerField(default=0)
    # The principal that posted it: only it may edit the message.
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # ElizaOS central-messaging fields, kept as sent.
    source_type = models.CharField(max_length=64, blank=True)
    raw_message = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["channel", "sent_at", "message_id"], name="message_history_idx")
        ]
        constraints = [
            # One reply per agent per message: a redelivered reply task cannot store two.
            models.UniqueConstraint(
                fields=["in_reply_to", "sender_id"],
                condition=Q(sender_type="agent", in_reply_to__isnull=False),
                name="message_one_agent_reply_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender_type}:{self.sender_id}: {self.content[:40]}"
