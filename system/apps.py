from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class SystemConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "system"
    verbose_name = "System"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = "371OS back office"
        admin.site.site_title = "371OS back office"
        admin.site.index_title = "Control plane"

        from system import schema  # noqa: F401 - registers the OpenAPI auth extension
        from system.policy import PolicyError, get_policy

        try:
            get_policy()
        except (OSError, PolicyError) as exc:
            raise ImproperlyConfigured(f"access policy: {exc}") from None
