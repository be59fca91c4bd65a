import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from celery import signals

        def preload_llm_router(**kwargs) -> None:
            # In a worker's main process, before the pool forks: every pool process inherits
            # the loaded routing and the imported SDKs, instead of paying seconds on its first
            # agent reply.
            from agents.runtime import get_router

            try:
                get_router().preload()
            except Exception as exc:  # noqa: BLE001 - a task reports the routing error
                logger.warning("LLM router not preloaded (%s: %s)", type(exc).__name__, exc)

        signals.worker_init.connect(preload_llm_router, weak=False)
