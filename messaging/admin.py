from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from messaging import services
from messaging.members import agents_by_ref
from messaging.models import Channel, ChannelMember, Message
from messaging.validation import validate_content, validate_metadata
from system.kernel.exceptions import DomainError
from system.kernel.principal import principal_from_request


class ChannelMemberInline(admin.TabularInline):
    model = ChannelMember
    extra = 0
    fields = ("member_id", "member_type", "added_at")
    readonly_fields = ("added_at",)


class ChannelAdminForm(forms.ModelForm):
    request: HttpRequest  # set by ChannelAdmin.get_form on the class it builds per request

    class Meta:
        model = Channel
        fields = ["name", "type", "agent_replies_enabled"]

    def clean_agent_replies_enabled(self) -> bool:
        enabled = self.cleaned_data["agent_replies_enabled"]
        if enabled and not self.instance.agent_replies_enabled:
            try:
                services.channel_agent_replies_check(
                    enabled=True, principal=principal_from_request(self.request)
                )
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from None
        return enabled


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = (
        "name",
        "type",
        "agent_replies_enabled",
        "member_count",
        "message_count",
        "created_at",
    )
    list_filter = ("type", "agent_replies_enabled")
    search_fields = ("name", "=channel_id")
    inlines = [ChannelMemberInline]
    readonly_fields = ("channel_id", "created_by", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=Count("members", distinct=True),
                message_total=Count("messages", distinct=True),
            )
        )

    @admin.display(description="members", ordering="member_total")
    def member_count(self, channel: Channel) -> int:
        return channel.member_total

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, channel: Channel) -> int:
        return channel.message_total

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def save_model(
        self, request: HttpRequest, obj: Channel, form: forms.Form, change: bool
    ) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class MessagePostForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["channel", "sender_id", "content", "metadata"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field, check in (
            ("content", validate_content),
            ("metadata", validate_metadata),
        ):
            try:
                check(cleaned.get(field))
            except DomainError as exc:
                self.add_error(field, exc.message if not exc.details else str(exc.details))
        channel = cleaned.get("channel")
        if channel is not None and channel.type != Channel.Type.PUBLIC:
            sender = services.resolve_members([cleaned.get("sender_id") or ""])[0].member_id
            if not channel.members.filter(member_id=sender).exists():
                self.add_error("sender_id", "The sender is not a member of this channel.")
        return cleaned


def sender_names(messages: list[Message]) -> dict[str, str]:
    """Agents' names for the agent senders among `messages`, in one query (none if no agent)."""
    agent_ids = sorted({m.sender_id for m in messages if m.sender_type == Message.SenderType.AGENT})
    return {ref: agent.name for ref, agent in agents_by_ref(agent_ids).items()}


class MessageChangeList(ChangeList):
    """Names the page's agent senders with one query, not one per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        names = sender_names(list(self.result_list))
        for message in self.result_list:
            message.sender_name = names.get(message.sender_id)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages are posted through messaging.services (events, agent replies) and never
    rewritten here: the history is the record."""

    list_display = ("sent_at", "channel_name", "sender", "short_content", "edited_at")
    list_filter = ("sender_type", "channel")
    search_fields = ("content", "sender_id")
    list_select_related = ("channel",)
    show_full_result_count = False
    readonly_fields = (
        "message_id", "channel", "sender", "sender_id", "sender_type", "content", "metadata",
        "sent_at", "edited_at", "in_reply_to", "reply_depth", "posted_by", "source_type",
        "raw_message",
    )  # fmt: skip

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MessageChangeList

    @admin.display(description="channel", ordering="channel__name")
    def channel_name(self, message: Message) -> str:
        return message.channel.name

    @admin.display(description="sender")
    def sender(self, message: Message) -> str:
        """An agent by its name (a deleted one by its id), a user by username, an external
        participant by the id it was sent with."""
        if message.sender_type != Message.SenderType.AGENT:
            return message.sender_id
        if not hasattr(message, "sender_name"):  # the detail page: one message, one query
            message.sender_name = sender_names([message]).get(message.sender_id)
        if message.sender_name is None:
            return f"{message.sender_id} (agent, deleted)"
        return f"{message.sender_name} (agent)"

    @admin.display(description="content")
    def short_content(self, message: Message) -> str:
        return Truncator(" ".join(message.content.split())).chars(80)

    def get_form(self, request: HttpRequest, obj: Message | None = None, **kwargs: Any):
        if obj is None:
            kwargs["form"] = MessagePostForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Message | None = None) -> tuple:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Message | None = None) -> list:
        if obj is None:
            return ["channel", "sender_id", "content", "metadata"]
        return list(self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def save_model(
        self, request: HttpRequest, obj: Message, form: forms.Form, change: bool
    ) -> None:
        message = services.message_post(
            principal=principal_from_request(request),
            channel=form.cleaned_data["channel"],
            sender_id=form.cleaned_data["sender_id"],
            content=form.cleaned_data["content"],
            metadata=form.cleaned_data.get("metadata") or {},
        )
        obj.pk = message.pk
