from django.apps import AppConfig


class NotifyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "system.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from system.kernel.deprecation import deprecated_endpoint_used
        from system.notify.deprecation_alerts import deprecated_endpoint_alert

        deprecated_endpoint_used.connect(
            deprecated_endpoint_alert, dispatch_uid="notify.deprecated_endpoint_alert"
        )
