from django.apps import AppConfig


class SystemConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "system"
    verbose_name = "System"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = "371OS back office"
        admin.site.site_title = "371OS back office"
        admin.site.index_title = "Control plane"
