from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join

from messaging.models import Message
from sessions_app import services
from sessions_app.models import Session
from system.kernel.exceptions import DomainError


def human_span(span: timedelta) -> str:
    """A duration as staff read it: "40 s", "12 min", "3 h", "2 d" (rounded down)."""
    seconds = max(int(span.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    """Read-only; end and renew go through the same services as the APIs."""

    list_display = (
        "session_id",
        "status",
        "owner",
        "agent_name",
        "user_id",
        "time_remaining",
        "expires_at",
        "renewal_count",
    )
    list_filter = ("status", "agent")
    search_fields = ("=session_id", "user_id", "owner__username", "agent__name")
    list_select_related = ("agent", "owner")
    actions = ["end", "renew"]
    show_full_result_count = False
    readonly_fields = (
        "session_id", "agent", "user_id", "owner", "status", "created_at", "last_activity",
        "expires_at", "ended_at", "expired_at", "timeout_minutes", "auto_renew",
        "max_duration_minutes", "warning_threshold_minutes", "renewal_count", "warned_at",
        "context", "metadata", "summary", "conversation",
    )  # fmt: skip
    exclude = ("channel", "agent_uuid", "warn_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """End and renew: Django's change permission on sessions (whose form stays read-only)."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description="agent", ordering="agent__name")
    def agent_name(self, session: Session) -> str:
        if session.agent is None:
            return f"{session.agent_uuid} (deleted)"
        return session.agent.name

    @admin.display(description="time left", ordering="expires_at")
    def time_remaining(self, session: Session) -> str:
        """ "12 min left" for a live session, "expired 3 h ago" / "ended 5 min ago" after."""
        now = timezone.now()
        if session.status == Session.Status.ENDED:
            return f"ended {human_span(now - (session.ended_at or session.expires_at))} ago"
        if session.expires_at > now:
            return f"{human_span(session.expires_at - now)} left"
        # When it ran out, not when the sweep (or a read) marked it expired.
        return f"expired {human_span(now - session.expires_at)} ago"

    @admin.display(description="conversation")
    def conversation(self, session: Session) -> str:
        rows = Message.objects.filter(channel_id=session.channel_id).order_by("sent_at")[:200]
        return format_html_join(
            "", "<p><strong>{}</strong> {}: {}</p>",
            ((m.sent_at.strftime("%H:%M:%S"), m.sender_type, m.content) for m in rows),
        )  # fmt: skip

    def _apply(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        for session in queryset:
            try:
                service(session=session)
            except DomainError as exc:
                self.message_user(request, f"{session.session_id}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{verb} {session.session_id}.", messages.SUCCESS)

    @admin.action(description="End selected sessions", permissions=["manage"])
    def end(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.session_end, "Ended")

    @admin.action(description="Renew selected sessions", permissions=["manage"])
    def renew(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.session_renew, "Renewed")
