from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "system.auth"
    label = "system_auth"  # not "auth": that is django.contrib.auth's
    verbose_name = "Authentication"
