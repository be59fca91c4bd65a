"""The event log in the back office: read-only."""

from django.contrib import admin

from system.kernel.admin import ReadOnlyAdminMixin
from system.models import EventLogEntry


@admin.register(EventLogEntry)
class EventLogEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the log is written by services only and pruned by beat."""

    list_display = ("event_id", "event_type", "created_at", "agent_id", "channel_id", "session_id")
    list_filter = ("event_type",)
    search_fields = ("=event_id", "=agent_id", "=channel_id", "=session_id")
    ordering = ("-event_id",)
    show_full_result_count = False
