from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "system.ops"
    label = "system_ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from celery import signals
        from django.contrib import admin

        from system.ops.heartbeat import worker_heartbeat_start, worker_heartbeat_stop
        from system.ops.metrics import task_outcome_counting_start

        admin.site.site_header = "371OS back office"
        admin.site.site_title = "371OS back office"
        admin.site.index_title = "Control plane"

        # A Celery worker counts task outcomes for /metrics and writes its heartbeat for the
        # status API (`agent_orchestrator`). weak=False: nothing else holds the receivers.
        def count_task_outcomes(**kwargs) -> None:
            task_outcome_counting_start()

        def start_heartbeat(sender, **kwargs) -> None:
            # Only workers of the default queue run agents' work; the `webhooks` worker (its
            # own queue) is not an agent_orchestrator.
            if sender.app.conf.task_default_queue in sender.app.amqp.queues.consume_from:
                worker_heartbeat_start(sender.hostname)

        def stop_heartbeat(**kwargs) -> None:
            worker_heartbeat_stop()

        signals.worker_init.connect(count_task_outcomes, weak=False)
        signals.worker_ready.connect(start_heartbeat, weak=False)
        signals.worker_shutdown.connect(stop_heartbeat, weak=False)
