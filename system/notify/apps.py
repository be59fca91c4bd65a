from django.apps import AppConfig


class NotifyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "system.notify"
    label = "notify"
    verbose_name = "Notifications"
