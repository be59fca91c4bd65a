from django.apps import AppConfig


class DevServerConfig(AppConfig):
    name = "system.devserver"
    label = "system_devserver"
    verbose_name = "Development server"
