from django.apps import AppConfig


class EventLogConfig(AppConfig):
    name = "system.eventlog"
    label = "system_eventlog"
    verbose_name = "Event log"
