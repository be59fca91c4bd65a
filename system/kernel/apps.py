from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class KernelConfig(AppConfig):
    name = "system.kernel"
    label = "system_kernel"
    verbose_name = "Kernel"

    def ready(self) -> None:
        from celery import signals

        from system.kernel import schema  # noqa: F401 - registers the OpenAPI auth extension
        from system.kernel.outbox import task_finished

        signals.task_postrun.connect(task_finished, dispatch_uid="system.kernel.outbox")
        from system.kernel.policy import PolicyError, get_policy

        try:
            get_policy()
        except (OSError, PolicyError) as exc:
            raise ImproperlyConfigured(f"access policy: {exc}") from None
