from django.apps import AppConfig


class SystemConfig(AppConfig):
    """The platform's models (system/models.py) and their migrations; the rooms under
    `system/` are apps of their own (kernel, eventlog, auth, realtime, ops, devserver)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "system"
    verbose_name = "System"
