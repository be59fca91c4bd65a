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


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    """Read-only; end and renew go through the same services as the APIs."""

    list_display = (
        "session_id",
        "status",
        "agent",
        "user_id",
        "expires_at",
        "time_remaining",
        "renewal_count",
    )
    list_filter = ("status", "agent")
    search_fields = ("=session_id", "user_id")
    list_select_related = ("agent",)
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

    @admin.display(description="time remaining")
    def time_remaining(self, session: Session) -> str:
        if session.status != Session.Status.ACTIVE:
            return "-"
        remaining = session.expires_at - timezone.now()
        return str(remaining).split(".")[0] if remaining.total_seconds() > 0 else "due"

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
