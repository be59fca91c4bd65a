from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "system.realtime"
    label = "system_realtime"
    verbose_name = "Real-time"
